"""Per-tenant version routing: events and commands.

Resolution for (service, tenant): the tenant's pin, else the rollout (when the
tenant's sticky bucket falls under its percentage), else the service's default.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from tenantplane.contracts.commands import Command, TenantCommand
from tenantplane.contracts.envelope import Event
from tenantplane.contracts.ids import Name

Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})$")]
Upstream = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Labels = Annotated[dict[Name, Annotated[str, Field(max_length=256)]], Field(max_length=32)]
Percent = Annotated[float, Field(ge=0, le=100)]


class _Route(Event):
    family: ClassVar[str] = "route"
    platform_scoped: ClassVar[bool] = True
    service: Name


class VersionRegistered(_Route):
    """A version of a service can now receive traffic (platform scope)."""

    event_type: ClassVar[str] = "route.version_registered"
    version: Version
    upstream: Upstream
    labels: Labels = Field(default_factory=dict)


class DefaultVersionSet(_Route):
    """Tenants without a pin or rollout match go to this version (platform scope)."""

    event_type: ClassVar[str] = "route.default_set"
    version: Version


class RolloutSet(_Route):
    """The first `percent` of tenants in `cohort` (contracts/cohorts.py) go to `version`
    (platform scope); no cohort: the service's own, named like the service."""

    event_type: ClassVar[str] = "route.rollout_set"
    version: Version
    percent: Percent
    cohort: Name | None = None


class VersionRetired(_Route):
    """A version no longer receives traffic (platform scope)."""

    event_type: ClassVar[str] = "route.version_retired"
    version: Version


class TenantPinned(_Route):
    """A tenant goes to `version`, whatever the rollout and default say."""

    event_type: ClassVar[str] = "route.tenant_pinned"
    version: Version


class TenantUnpinned(_Route):
    """A tenant's pin was removed."""

    event_type: ClassVar[str] = "route.tenant_unpinned"


EVENTS: tuple[type[Event], ...] = (
    VersionRegistered,
    DefaultVersionSet,
    RolloutSet,
    VersionRetired,
    TenantPinned,
    TenantUnpinned,
)


class ServiceCommand(Command):
    """A routing command about one service."""

    service: ClassVar[str] = "router"
    target: Name = Field(description="the service whose routing changes")


class RegisterVersion(ServiceCommand):
    """Register a version of a service and where it is reached."""

    name: ClassVar[str] = "version.register"
    version: Version
    upstream: Upstream
    labels: Labels = Field(default_factory=dict)


class SetDefault(ServiceCommand):
    """Set the version tenants get when no pin or rollout applies."""

    name: ClassVar[str] = "default.set"
    version: Version


class Rollout(ServiceCommand):
    """Send `percent` of tenants (sticky) to `version`; 0 ends the rollout.

    `cohort` names the tenants' order (contracts/cohorts.py): the service's own by
    default; a config rollout naming the same cohort reaches the same tenants.
    """

    name: ClassVar[str] = "rollout.set"
    version: Version
    percent: Percent
    cohort: Name | None = None


class RetireVersion(ServiceCommand):
    """Retire a version (refused while pinned, rolled out, or the default)."""

    name: ClassVar[str] = "version.retire"
    version: Version


class PinTenant(ServiceCommand, TenantCommand):
    """Pin a tenant to a version of a service."""

    name: ClassVar[str] = "tenant.pin"
    version: Version


class UnpinTenant(ServiceCommand, TenantCommand):
    """Remove a tenant's pin."""

    name: ClassVar[str] = "tenant.unpin"


COMMANDS: tuple[type[ServiceCommand], ...] = (
    RegisterVersion,
    SetDefault,
    Rollout,
    RetireVersion,
    PinTenant,
    UnpinTenant,
)
