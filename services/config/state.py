"""A tenant's state as its events made it: the write side's view of one tenant."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from tenantplane.contracts.config import (
    ConfigKeysUnset,
    ConfigReplaced,
    ConfigValuesSet,
    SealedValue,
)
from tenantplane.contracts.tenants import (
    TenantOffboarded,
    TenantPlanChanged,
    TenantRegistered,
    TenantResumed,
    TenantStatus,
    TenantSuspended,
)
from tenantplane.services.runtime.eventlog import StoredEvent

_EMPTY: MappingProxyType[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class TenantState:
    """Lifecycle and config of one tenant."""

    tenant_id: str
    status: TenantStatus | None = None
    display_name: str = ""
    plan: str = ""
    labels: MappingProxyType[str, str] = field(default_factory=lambda: _EMPTY)
    values: MappingProxyType[str, Any] = field(default_factory=lambda: _EMPTY)
    secrets: MappingProxyType[str, SealedValue] = field(default_factory=lambda: _EMPTY)
    # The sequence of the last config change (0: none); what `if_version` is checked against.
    config_version: int = 0

    @property
    def exists(self) -> bool:
        """Registered and not offboarded."""
        return self.status in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED)


def evolve(state: TenantState, stored: StoredEvent) -> TenantState:
    """The state after `stored`."""
    data = stored.envelope.data
    after = _apply(state, data)
    if isinstance(data, ConfigValuesSet | ConfigKeysUnset | ConfigReplaced):
        after = replace(after, config_version=stored.seq)
    return after


def _apply(state: TenantState, data: object) -> TenantState:
    match data:
        case TenantRegistered(display_name=name, plan=plan, labels=labels):
            return replace(
                state,
                status=TenantStatus.ACTIVE,
                display_name=name,
                plan=plan,
                labels=MappingProxyType(dict(labels)),
            )
        case TenantSuspended():
            return replace(state, status=TenantStatus.SUSPENDED)
        case TenantResumed():
            return replace(state, status=TenantStatus.ACTIVE)
        case TenantPlanChanged(plan=plan):
            return replace(state, plan=plan)
        case TenantOffboarded():
            return replace(state, status=TenantStatus.OFFBOARDED, values=_EMPTY, secrets=_EMPTY)
        case ConfigValuesSet(values=values, secrets=secrets):
            return replace(
                state,
                values=MappingProxyType({**_without(state.values, secrets), **values}),
                secrets=MappingProxyType({**_without(state.secrets, values), **secrets}),
            )
        case ConfigKeysUnset(keys=keys):
            return replace(
                state,
                values=MappingProxyType(_without(state.values, keys)),
                secrets=MappingProxyType(_without(state.secrets, keys)),
            )
        case ConfigReplaced(values=values, secrets=secrets):
            return replace(
                state,
                values=MappingProxyType(dict(values)),
                secrets=MappingProxyType(dict(secrets)),
            )
    return state


def _without(mapping: MappingProxyType[str, Any], keys: Any) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}
