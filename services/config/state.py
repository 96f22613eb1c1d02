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
from tenantplane.contracts.rollouts import ConfigRolloutJoined, ConfigRolloutLeft
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
class Held:
    """A key whose value a rollout holds for the tenant, over the tenant's own."""

    rollout: str
    value: Any


CONFIG_EVENTS = (
    ConfigValuesSet,
    ConfigKeysUnset,
    ConfigReplaced,
    ConfigRolloutJoined,
    ConfigRolloutLeft,
)


@dataclass(frozen=True)
class TenantState:
    """Lifecycle and config of one tenant.

    `values` and `secrets` are the tenant's own; `held` the keys rollouts hold for
    it. What readers see is `effective`: own values, overlaid by the held ones.
    """

    tenant_id: str
    status: TenantStatus | None = None
    display_name: str = ""
    plan: str = ""
    labels: MappingProxyType[str, str] = field(default_factory=lambda: _EMPTY)
    values: MappingProxyType[str, Any] = field(default_factory=lambda: _EMPTY)
    secrets: MappingProxyType[str, SealedValue] = field(default_factory=lambda: _EMPTY)
    held: MappingProxyType[str, Held] = field(default_factory=lambda: _EMPTY)
    # The sequence of the last config change (0: none); what `if_version` is checked against.
    config_version: int = 0

    @property
    def exists(self) -> bool:
        """Registered and not offboarded."""
        return self.status in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED)

    @property
    def effective(self) -> dict[str, Any]:
        """The plain values readers see: own values, overlaid by rollouts' held ones."""
        return {**self.values, **{k: h.value for k, h in self.held.items()}}

    def rollouts(self) -> dict[str, tuple[str, ...]]:
        """The rollouts the tenant is in, each with the keys it holds."""
        found: dict[str, list[str]] = {}
        for key, held in self.held.items():
            found.setdefault(held.rollout, []).append(key)
        return {name: tuple(sorted(keys)) for name, keys in found.items()}


def evolve(state: TenantState, stored: StoredEvent) -> TenantState:
    """The state after `stored`."""
    data = stored.envelope.data
    after = _apply(state, data)
    if isinstance(data, CONFIG_EVENTS):
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
            return replace(
                state, status=TenantStatus.OFFBOARDED, values=_EMPTY, secrets=_EMPTY, held=_EMPTY
            )
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
        case ConfigRolloutJoined(rollout=rollout, values=values):
            held = {k: Held(rollout, v) for k, v in values.items()}
            return replace(state, held=MappingProxyType({**state.held, **held}))
        case ConfigRolloutLeft(keys=keys) as left:
            adopted = left.adopted
            values = {**state.values, **{k: state.held[k].value for k in adopted}}
            return replace(
                state,
                values=MappingProxyType(values),
                secrets=MappingProxyType(_without(state.secrets, adopted)),
                held=MappingProxyType(_without(state.held, keys)),
            )
    return state


def _without(mapping: MappingProxyType[str, Any], keys: Any) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}
