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
    return _decide_config(state, command, schema, sealed)


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
