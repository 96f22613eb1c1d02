"""The router's write side: one aggregate per service, pins included.

A service's aggregate spans `<root>.evt.*.route.<service>`: its own events
(platform scope) and every tenant's pin. So a pin and a retirement of the same
version can never both succeed, while each tenant's pins stay under its id.
"""

from __future__ import annotations

from tenantplane.contracts.ids import PLATFORM
from tenantplane.contracts.routing import (
    DefaultVersionSet,
    PinTenant,
    RegisterVersion,
    RetireVersion,
    Rollout,
    RolloutSet,
    ServiceCommand,
    SetDefault,
    TenantPinned,
    TenantUnpinned,
    UnpinTenant,
    VersionRegistered,
    VersionRetired,
)
from tenantplane.services.router.table import RouteRollout, RoutingTable, VersionInfo, evolve
from tenantplane.services.runtime.aggregates import AggregateWrites, Change
from tenantplane.services.runtime.errors import InvalidRequest, InvalidTransition
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.tenants import require_tenant

SHOWN_TENANTS = 5


class RouteWrites(AggregateWrites[RoutingTable, ServiceCommand]):
    """Executes routing commands (see `AggregateWrites`)."""

    def key_of(self, command: ServiceCommand) -> str:
        return command.target

    def boundary(self, key: str) -> str:
        return self.log.subjects.routes_of(key)

    def initial(self, key: str) -> RoutingTable:
        return RoutingTable(key)

    def evolve(self, state: RoutingTable, stored: StoredEvent) -> RoutingTable:
        return evolve(state, stored)

    async def change_for(self, state: RoutingTable, command: ServiceCommand) -> Change | None:
        service = state.service
        match command:
            case RegisterVersion(version=v, upstream=upstream, labels=labels):
                return _register(state, v, VersionInfo(upstream, dict(labels)))
            case SetDefault(version=v):
                _live(state, v)
                return (
                    None
                    if state.default == v
                    else _platform(DefaultVersionSet(service=service, version=v))
                )
            case Rollout(version=v, percent=percent, cohort=cohort):
                return _rollout(state, v, percent, cohort or service)
            case RetireVersion(version=v):
                _retirable(state, v)
                return _platform(VersionRetired(service=service, version=v))
            case PinTenant(tenant_id=tenant, version=v):
                _live(state, v)
                await require_tenant(self.log, tenant)
                if state.pins.get(tenant) == v:
                    return None
                return Change(TenantPinned(service=service, version=v), tenant)
            case UnpinTenant(tenant_id=tenant):
                if tenant not in state.pins:
                    raise InvalidRequest(f"{tenant} is not pinned for {service}")
                return Change(TenantUnpinned(service=service), tenant)
        raise InvalidRequest(f"the router does not handle {type(command).__name__}")


def _platform(data: VersionRegistered | DefaultVersionSet | RolloutSet | VersionRetired) -> Change:
    return Change(data, PLATFORM)


def _register(state: RoutingTable, version: str, info: VersionInfo) -> Change | None:
    if version in state.retired:
        raise InvalidTransition(f"{state.service} {version} was retired; versions are not reused")
    current = state.versions.get(version)
    if current == info:
        return None
    if current is not None:
        raise InvalidTransition(
            f"{state.service} {version} is registered at {current.upstream}; "
            "register a new version instead of moving this one"
        )
    data = VersionRegistered(
        service=state.service, version=version, upstream=info.upstream, labels=dict(info.labels)
    )
    return _platform(data)


def _rollout(state: RoutingTable, version: str, percent: float, cohort: str) -> Change | None:
    if percent > 0:
        _live(state, version)
    if (percent == 0 and state.rollout is None) or state.rollout == RouteRollout(
        version, percent, cohort
    ):
        return None
    # The service's own cohort is left unnamed, as in events written before cohorts.
    named = None if cohort == state.service else cohort
    data = RolloutSet(service=state.service, version=version, percent=percent, cohort=named)
    return _platform(data)


def _live(state: RoutingTable, version: str) -> None:
    if version not in state.versions:
        known = ", ".join(sorted(state.versions)) or "none"
        raise InvalidRequest(
            f"{state.service} has no live version {version} (live: {known})", version=version
        )


def _retirable(state: RoutingTable, version: str) -> None:
    _live(state, version)
    pinned = state.pinned_to(version)
    if pinned:
        shown = ", ".join(pinned[:SHOWN_TENANTS]) + (", ..." if len(pinned) > SHOWN_TENANTS else "")
        raise InvalidTransition(
            f"cannot retire {state.service} {version}: {_tenants(len(pinned))} pinned to it "
            f"({shown}); unpin them first",
            pinned=len(pinned),
        )
    if state.rollout is not None and state.rollout.version == version:
        raise InvalidTransition(
            f"cannot retire {state.service} {version}: a rollout sends {state.rollout.percent:g}% "
            "of tenants to it; end the rollout first"
        )
    if state.default == version:
        raise InvalidTransition(
            f"cannot retire {state.service} {version}: it is the default; set another first"
        )


def _tenants(count: int) -> str:
    return "1 tenant is" if count == 1 else f"{count} tenants are"
