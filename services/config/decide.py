"""What each command means for a tenant in a given state: one event, or a named refusal."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tenantplane.contracts.commands import Command
from tenantplane.contracts.config import (
    ConfigKeysUnset,
    ConfigReplaced,
    ConfigValuesSet,
    ReplaceConfig,
    SealedValue,
    SetConfig,
    UnsetConfig,
)
from tenantplane.contracts.envelope import Event
from tenantplane.contracts.rollouts import ConfigRolloutJoined, ConfigRolloutLeft
from tenantplane.contracts.tenants import (
    ChangePlan,
    OffboardTenant,
    RegisterTenant,
    ResumeTenant,
    SuspendTenant,
    TenantOffboarded,
    TenantPlanChanged,
    TenantRegistered,
    TenantResumed,
    TenantStatus,
    TenantSuspended,
)
from tenantplane.services.config.schema import ConfigSchema
from tenantplane.services.config.state import TenantState
from tenantplane.services.config.steps import AdoptRollout, JoinRollout, LeaveRollout
from tenantplane.services.runtime.errors import (
    ConcurrencyConflict,
    InvalidRequest,
    InvalidTransition,
    TenantExists,
    TenantNotFound,
)


def decide(
    state: TenantState,
    command: Command,
    schema: ConfigSchema,
    sealed: Mapping[str, SealedValue] = MappingProxyType({}),
) -> Event | None:
    """The event `command` appends to a tenant in `state`; None when nothing would change.

    `sealed` holds the command's secret values, already encrypted (and left out
    when unchanged) by the caller, which owns the keys.

    Raises:
        TenantExists, TenantNotFound, InvalidTransition, InvalidConfigValue, InvalidRequest,
        ConcurrencyConflict (a config change whose `if_version` is not the config's).
    """
    match command:
        case RegisterTenant(display_name=name, plan=plan, labels=labels):
            if state.status is not None:
                raise TenantExists(f"tenant {state.tenant_id} already exists ({state.status})")
            return TenantRegistered(display_name=name, plan=plan, labels=labels)
        case SuspendTenant():
            _require(state, TenantStatus.ACTIVE, "suspend")
            return TenantSuspended()
        case ResumeTenant():
            _require(state, TenantStatus.SUSPENDED, "resume")
            return TenantResumed()
        case ChangePlan(plan=plan):
            _existing(state)
            if plan == state.plan:
                raise InvalidTransition(f"tenant {state.tenant_id} is on plan {plan} already")
            return TenantPlanChanged(plan=plan)
        case OffboardTenant(shred_secrets=shred):
            _existing(state)
            return TenantOffboarded(shred_secrets=shred)
        case JoinRollout() | LeaveRollout() | AdoptRollout():
            return _decide_rollout(state, command, schema)
    return _decide_config(state, command, schema, sealed)


def _decide_rollout(
    state: TenantState, step: JoinRollout | LeaveRollout | AdoptRollout, schema: ConfigSchema
) -> Event | None:
    """A rollout's step for one tenant; None when it has nothing to do (a tenant that
    does not exist, is already where the step would take it, or keeps its own values)."""
    if not state.exists:
        return None
    held = state.rollouts().get(step.rollout, ())
    match step:
        case JoinRollout(values=values, except_explicit=protect):
            if held:
                return None
            values = _reachable(state, step.rollout, values, protect)
            return (
                ConfigRolloutJoined(rollout=step.rollout, values=_plain(schema, values))
                if values
                else None
            )
        case LeaveRollout(promoted=promoted):
            return (
                ConfigRolloutLeft(rollout=step.rollout, keys=held, promoted=promoted)
                if held
                else None
            )
        case AdoptRollout(values=values, except_explicit=protect):
            if held:
                # Protected, an own value set while the rollout held the key stays.
                kept = tuple(k for k in held if protect and k in state.values)
                return ConfigRolloutLeft(rollout=step.rollout, keys=held, promoted=True, kept=kept)
            plain = _plain(schema, _reachable(state, step.rollout, values, protect))
            changed = {k: v for k, v in plain.items() if state.values.get(k, _MISSING) != v}
            return ConfigValuesSet(values=changed) if changed else None
    return None


def _reachable(
    state: TenantState, rollout: str, values: Mapping[str, Any], protect: bool
) -> dict[str, Any]:
    """The rollout's values a tenant takes: not those another rollout holds for it, nor,
    when its own values are protected, those it has its own value for."""
    return {
        k: v
        for k, v in values.items()
        if (k not in state.held or state.held[k].rollout == rollout)
        and not (protect and (k in state.values or k in state.secrets))
    }


def _decide_config(
    state: TenantState, command: Command, schema: ConfigSchema, sealed: Mapping[str, SealedValue]
) -> Event | None:
    _existing(state)
    _check_version(state, command)
    match command:
        case SetConfig(values=values):
            plain = _plain(schema, values)
            changed = {k: v for k, v in plain.items() if state.values.get(k, _MISSING) != v}
            if not changed and not sealed:
                return None
            return ConfigValuesSet(values=changed, secrets=dict(sealed))
        case UnsetConfig(keys=keys):
            missing = sorted(k for k in keys if k not in state.values and k not in state.secrets)
            if missing:
                raise InvalidRequest(f"not set for {state.tenant_id}: {', '.join(missing)}")
            return ConfigKeysUnset(keys=keys)
        case ReplaceConfig(values=values):
            plain = _plain(schema, values)
            if plain == dict(state.values) and dict(sealed) == dict(state.secrets):
                return None
            return ConfigReplaced(values=plain, secrets=dict(sealed))
    raise InvalidRequest(f"the config service does not handle {type(command).__name__}")


_MISSING = object()


def _check_version(state: TenantState, command: Command) -> None:
    """Refuse a change made on a config version that is no longer the tenant's."""
    expected = getattr(command, "if_version", None)
    if expected is not None and expected != state.config_version:
        raise ConcurrencyConflict(
            f"the config of {state.tenant_id}", expected, state.config_version
        )


def _plain(schema: ConfigSchema, values: Mapping[str, Any]) -> dict[str, Any]:
    """The non-secret values, each checked against the schema."""
    schema.check(dict(values))
    return {k: v for k, v in values.items() if not schema.is_secret(k)}


def _existing(state: TenantState) -> None:
    if not state.exists:
        gone = " (offboarded)" if state.status is TenantStatus.OFFBOARDED else ""
        raise TenantNotFound(f"no tenant {state.tenant_id}{gone}", tenant_id=state.tenant_id)


def _require(state: TenantState, status: TenantStatus, verb: str) -> None:
    _existing(state)
    if state.status is not status:
        raise InvalidTransition(
            f"cannot {verb} tenant {state.tenant_id}: it is {state.status}, not {status}"
        )
