"""A service's routing table, how events change it, and how a tenant resolves against it."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from tenantplane.contracts.ids import PLATFORM
from tenantplane.contracts.routing import (
    DefaultVersionSet,
    RolloutSet,
    TenantPinned,
    TenantUnpinned,
    VersionRegistered,
    VersionRetired,
)
from tenantplane.services.runtime.errors import NoRoute as NoRoute  # also importable from here
from tenantplane.services.runtime.eventlog import StoredEvent

_BUCKETS = 2**32
NO_ROUTE = "(no route)"


@dataclass(frozen=True)
class VersionInfo:
    """Where a live version is reached."""

    upstream: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """Where one tenant's calls to one service go, and which rule said so."""

    service: str
    version: str
    upstream: str
    via: Literal["pin", "rollout", "default"]


def bucket(service: str, tenant_id: str) -> float:
    """A tenant's sticky place in [0, 100) for a service's rollouts.

    A stable hash of the ids: raising a rollout from 10% to 20% only adds
    tenants; each service spreads its rollouts over different tenants.
    """
    digest = hashlib.sha256(f"{service}/{tenant_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / _BUCKETS * 100


@dataclass(frozen=True)
class RoutingTable:
    """Live versions, default, rollout and pins of one service, at `version` (a sequence)."""

    service: str
    versions: Mapping[str, VersionInfo] = field(default_factory=lambda: MappingProxyType({}))
    retired: frozenset[str] = frozenset()
    default: str | None = None
    rollout: tuple[str, float] | None = None
    pins: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def resolve(self, tenant_id: str) -> Route:
        """Pin, else rollout, else default; never "any instance".

        Raises:
            NoRoute: nothing applies.
        """
        pinned = self.pins.get(tenant_id)
        if pinned is not None:
            return self._route(pinned, "pin")
        if self.rollout is not None and bucket(self.service, tenant_id) < self.rollout[1]:
            return self._route(self.rollout[0], "rollout")
        if self.default is not None:
            return self._route(self.default, "default")
        raise NoRoute(
            f"no route to {self.service} for {tenant_id}: no pin, rollout or default",
            service=self.service,
            tenant_id=tenant_id,
        )

    def _route(self, version: str, via: Literal["pin", "rollout", "default"]) -> Route:
        info = self.versions.get(version)
        if info is None:
            raise NoRoute(
                f"{self.service} {version} is not a live version",
                service=self.service,
                version=version,
            )
        return Route(self.service, version, info.upstream, via)

    def summary(self, tenants: Iterable[str]) -> list[dict[str, Any]]:
        """Per live version: upstream, role (default/rollout), pins, and tenants landing on it."""
        landed: Counter[str] = Counter()
        for tenant in tenants:
            try:
                landed[self.resolve(tenant).version] += 1
            except NoRoute:
                landed[NO_ROUTE] += 1
        rows = [
            {
                "version": version,
                "upstream": info.upstream,
                "role": ", ".join(self._roles(version)),
                "pinned": len(self.pinned_to(version)),
                "tenants": landed[version],
            }
            for version, info in sorted(self.versions.items())
        ]
        if landed[NO_ROUTE]:
            rows.append(
                {"version": NO_ROUTE, "upstream": "", "role": "", "pinned": 0,
                 "tenants": landed[NO_ROUTE]}
            )  # fmt: skip
        return rows

    def _roles(self, version: str) -> list[str]:
        roles = ["default"] if self.default == version else []
        if self.rollout is not None and self.rollout[0] == version:
            roles.append(f"rollout {self.rollout[1]:g}%")
        return roles

    def pinned_to(self, version: str) -> list[str]:
        """Tenants pinned to `version`, sorted."""
        return sorted(t for t, v in self.pins.items() if v == version)


def evolve(table: RoutingTable, stored: StoredEvent) -> RoutingTable:
    """The table after one routing event."""
    table = replace(table, version=stored.seq)
    match stored.envelope.data:
        case VersionRegistered(version=v, upstream=upstream, labels=labels):
            versions = {**table.versions, v: VersionInfo(upstream, dict(labels))}
            return replace(table, versions=MappingProxyType(versions))
        case DefaultVersionSet(version=v):
            return replace(table, default=v)
        case RolloutSet(version=v, percent=percent):
            return replace(table, rollout=(v, percent) if percent > 0 else None)
        case VersionRetired(version=v):
            versions = {k: i for k, i in table.versions.items() if k != v}
            return replace(table, versions=MappingProxyType(versions), retired=table.retired | {v})
        case TenantPinned(version=v) if stored.envelope.tenant_id != PLATFORM:
            pins = {**table.pins, stored.envelope.tenant_id: v}
            return replace(table, pins=MappingProxyType(pins))
        case TenantUnpinned():
            pins = {k: v for k, v in table.pins.items() if k != stored.envelope.tenant_id}
            return replace(table, pins=MappingProxyType(pins))
    return table
