"""What each command means for a tenant in a given state: one event, or a named refusal."""

from __future__ import annotations

from contracts.commands import Command
from contracts.config import (
    ConfigKeysUnset,
    ConfigReplaced,
    ConfigValuesSet,
    ReplaceConfig,
    SetConfig,
    UnsetConfig,
)
from contracts.envelope import Event
from contracts.tenants import (
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
from services.config.schema import ConfigSchema
from services.config.state import TenantState
from services.runtime.errors import (
    InvalidRequest,
    InvalidTransition,
    TenantExists,
    TenantNotFound,
)


def decide(state: TenantState, command: Command, schema: ConfigSchema) -> Event:
    """The event `command` appends to a tenant in `state`.

    Raises:
        TenantExists, TenantNotFound, InvalidTransition, InvalidConfigValue, InvalidRequest.
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
    return _decide_config(state, command, schema)


def _decide_config(state: TenantState, command: Command, schema: ConfigSchema) -> Event:
    _existing(state)
    match command:
        case SetConfig(values=values):
            return ConfigValuesSet(values=schema.check(dict(values)))
        case UnsetConfig(keys=keys):
            missing = sorted(k for k in keys if k not in state.values and k not in state.secrets)
            if missing:
                raise InvalidRequest(f"not set for {state.tenant_id}: {', '.join(missing)}")
            return ConfigKeysUnset(keys=keys)
        case ReplaceConfig(values=values):
            return ConfigReplaced(values=schema.check(dict(values)))
    raise InvalidRequest(f"the config service does not handle {type(command).__name__}")


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
