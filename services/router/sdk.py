"""The resolver SDK: `(service, tenant) -> Route` from a push-refreshed in-process cache.

    resolver = await Resolver.connect(settings)
    route = await resolver.resolve("billing", "acme")   # Route(version, upstream, via)

Each service's routing table is cached whole (pins, rules and versions read in
one Redis transaction) by the same cache the config SDK uses, and refreshed
when the router projection announces a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

import orjson
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.ids import validate_name, validate_tenant_id
from tenantplane.contracts.keys import Keys
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.router.projection import NAME as PROJECTION
from tenantplane.services.router.table import Route, RouteRollout, RoutingTable, VersionInfo
from tenantplane.services.runtime.cache import CachedReader, PushCache
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import read_hashes
from tenantplane.services.runtime.stores.redis_ops import as_text
from tenantplane.services.runtime.transient import unavailable_raised


def _every_cached(_: str, cached: Iterable[str]) -> Iterable[str]:
    """A routing change may concern any service's table: refresh every cached one."""
    return list(cached)


class Resolver(CachedReader[RoutingTable]):
    """Resolves tenants to service versions for asyncio code."""

    def __init__(
        self,
        nc: NATS,
        redis: aioredis.Redis,
        subjects: Subjects,
        keys: Keys,
        *,
        max_staleness_s: float = 30.0,
        owns_connections: bool = False,
    ) -> None:
        cache: PushCache[RoutingTable] = PushCache(
            nc, subjects, PROJECTION, self._load, lambda t: t.version,
            affected=_every_cached, max_staleness_s=max_staleness_s,
        )  # fmt: skip
        super().__init__(nc, redis, cache, owns_connections=owns_connections)
        self.keys = keys

    @classmethod
    async def connect(cls, settings: Settings, **options: Any) -> Resolver:
        """A started resolver with its own connections."""
        nc = await connect_nats(settings, "tenantplane-resolver")
        resolver = cls(
            nc, connect_redis(settings), settings.subjects, settings.keys,
            owns_connections=True, **options,
        )  # fmt: skip
        await resolver.start()
        return resolver

    async def resolve(self, service: str, tenant_id: str) -> Route:
        """Where `tenant_id`'s calls to `service` go.

        Raises:
            NoRoute: no pin, rollout or default applies.
            Unavailable: the table is not cached and Redis did not answer.
        """
        table = await self.table(service)
        return table.resolve(validate_tenant_id(tenant_id))

    async def table(self, service: str) -> RoutingTable:
        """A service's routing table, from the cache when fresh."""
        return await self.cache.get(validate_name(service, "service"))

    async def warm_up(self, services: Iterable[str] | None = None) -> int:
        """Load routing tables (every service's by default); returns how many."""
        if services is None:
            with unavailable_raised():
                listed = await self.redis.smembers(self.keys.route_services())
            services = [as_text(s) for s in listed]
        return await self.cache.warm_up(services)

    async def _load(self, service: str) -> RoutingTable:
        k = self.keys
        [(pins, rules, versions)] = await read_hashes(
            self.redis, [[k.route_pins(service), k.route_rules(service), k.route_versions(service)]]
        )
        text = {as_text(k): as_text(v) for k, v in rules.items()}
        rollout = None
        if "rollout_version" in text:
            rollout = RouteRollout(
                text["rollout_version"],
                float(text["rollout_percent"]),
                text.get("rollout_cohort", service),
            )
        return RoutingTable(
            service=service,
            versions=MappingProxyType({as_text(k): _info(v) for k, v in versions.items()}),
            default=text.get("default"),
            rollout=rollout,
            pins=MappingProxyType({as_text(k): as_text(v) for k, v in pins.items()}),
            version=int(text.get("version", 0)),
        )


def _info(raw: bytes | str) -> VersionInfo:
    doc = orjson.loads(raw)
    return VersionInfo(doc["upstream"], doc.get("labels", {}))
