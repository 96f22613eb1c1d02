"""A service's routing table, how events change it, and how a tenant resolves against it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from tenantplane.contracts import cohorts
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


@dataclass(frozen=True)
class RouteRollout:
    """The first `percent` of tenants in `cohort` go to `version`."""

    version: str
    percent: float
    cohort: str

    def includes(self, tenant_id: str) -> bool:
        """Whether a tenant is in this rollout (sticky: see contracts/cohorts.py)."""
        return cohorts.includes(tenant_id, self.cohort, self.percent)


@dataclass(frozen=True)
class RoutingTable:
    """Live versions, default, rollout and pins of one service, at `version` (a sequence)."""

    service: str
    versions: Mapping[str, VersionInfo] = field(default_factory=lambda: MappingProxyType({}))
    retired: frozenset[str] = frozenset()
    default: str | None = None
    rollout: RouteRollout | None = None
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
        if self.rollout is not None and self.rollout.includes(tenant_id):
            return self._route(self.rollout.version, "rollout")
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
        if self.rollout is not None and self.rollout.version == version:
            cohort = "" if self.rollout.cohort == self.service else f" of {self.rollout.cohort}"
            roles.append(f"rollout {self.rollout.percent:g}%{cohort}")
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
        case RolloutSet(version=v, percent=percent, cohort=cohort):
            rollout = RouteRollout(v, percent, cohort or table.service) if percent > 0 else None
            return replace(table, rollout=rollout)
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
