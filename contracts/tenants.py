"""Tenant lifecycle: events and commands.

registered -> active <-> suspended -> offboarded
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.envelope import Event

Plan = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
LabelKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_./-]{0,62}$")]
Labels = Annotated[dict[LabelKey, Annotated[str, Field(max_length=256)]], Field(max_length=64)]


class TenantStatus(StrEnum):
    """Where a tenant is in its lifecycle."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    OFFBOARDED = "offboarded"


class _Lifecycle(Event):
    family: ClassVar[str] = "lifecycle"


class TenantRegistered(_Lifecycle):
    """A tenant was onboarded."""

    event_type: ClassVar[str] = "tenant.registered"
    display_name: str = Field(min_length=1, max_length=200)
    plan: Plan
    labels: Labels = Field(default_factory=dict)


class TenantSuspended(_Lifecycle):
    """A tenant was suspended: its config stays, its jobs stop."""

    event_type: ClassVar[str] = "tenant.suspended"


class TenantResumed(_Lifecycle):
    """A suspended tenant was made active again."""

    event_type: ClassVar[str] = "tenant.resumed"


class TenantPlanChanged(_Lifecycle):
    """A tenant moved to another plan."""

    event_type: ClassVar[str] = "tenant.plan_changed"
    plan: Plan


class TenantOffboarded(_Lifecycle):
    """A tenant left; its read-model state is removed, its history stays in the log."""

    event_type: ClassVar[str] = "tenant.offboarded"
    shred_secrets: bool = False


EVENTS: tuple[type[Event], ...] = (
    TenantRegistered,
    TenantSuspended,
    TenantResumed,
    TenantPlanChanged,
    TenantOffboarded,
)


class _TenantCommand(TenantCommand):
    service: ClassVar[str] = "config"


class RegisterTenant(_TenantCommand):
    """Onboard a new tenant."""

    name: ClassVar[str] = "tenant.register"
    display_name: str = Field(min_length=1, max_length=200)
    plan: Plan = "standard"
    labels: Labels = Field(default_factory=dict)


class SuspendTenant(_TenantCommand):
    """Suspend an active tenant."""

    name: ClassVar[str] = "tenant.suspend"


class ResumeTenant(_TenantCommand):
    """Resume a suspended tenant."""

    name: ClassVar[str] = "tenant.resume"


class ChangePlan(_TenantCommand):
    """Move a tenant to another plan."""

    name: ClassVar[str] = "tenant.plan"
    plan: Plan


class OffboardTenant(_TenantCommand):
    """Offboard a tenant; with `shred_secrets`, destroy its data key."""

    name: ClassVar[str] = "tenant.offboard"
    shred_secrets: bool = False


COMMANDS: tuple[type[TenantCommand], ...] = (
    RegisterTenant,
    SuspendTenant,
    ResumeTenant,
    ChangePlan,
    OffboardTenant,
)
