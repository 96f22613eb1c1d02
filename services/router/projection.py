"""The routing read model in Redis, one set of keys per service (see contracts/keys.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from tenantplane.contracts.keys import Keys
from tenantplane.contracts.routing import (
    DefaultVersionSet,
    RolloutSet,
    TenantPinned,
    TenantUnpinned,
    VersionRegistered,
    VersionRetired,
)
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.stores.redis_ops import Arg, RedisOp, hdel, hset, sadd

NAME = "router"


@dataclass(frozen=True)
class RouterProjection:
    """Projects routing events into per-service hashes."""

    subjects: Subjects
    keys: Keys
    name: str = NAME

    def filters(self) -> Sequence[str]:
        """Every routing event."""
        return [self.subjects.all_routes()]

    def owned_patterns(self) -> Sequence[str]:
        """Keys only this projection writes."""
        return [self.keys.route_services(), f"{self.keys.root}:routes:*"]

    def apply(self, event: StoredEvent) -> Sequence[RedisOp]:
        """The Redis writes of one routing event."""
        data = event.envelope.data
        service = getattr(data, "service", "")
        rules, k = self.keys.route_rules(service), self.keys
        stamp = hset(rules, {"version": event.seq})
        match data:
            case VersionRegistered(version=v, upstream=upstream, labels=labels):
                info = orjson.dumps({"upstream": upstream, "labels": labels})
                return [
                    hset(k.route_versions(service), {v: info}),
                    sadd(k.route_services(), service),
                    stamp,
                ]
            case DefaultVersionSet(version=v):
                return [hset(rules, {"default": v}), stamp]
            case RolloutSet(version=v, percent=p, cohort=cohort) if p > 0:
                rollout: dict[str, Arg] = {"rollout_version": v, "rollout_percent": p}
                return [hset(rules, {**rollout, "rollout_cohort": cohort or service}), stamp]
            case RolloutSet():
                return [hdel(rules, "rollout_version", "rollout_percent", "rollout_cohort"), stamp]
            case VersionRetired(version=v):
                return [hdel(k.route_versions(service), v), stamp]
            case TenantPinned(version=v):
                return [hset(k.route_pins(service), {event.envelope.tenant_id: v}), stamp]
            case TenantUnpinned():
                return [hdel(k.route_pins(service), event.envelope.tenant_id), stamp]
        raise ValueError(f"{NAME} does not project {event.envelope.type}")
