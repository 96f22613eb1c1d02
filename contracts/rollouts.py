"""Config rollouts (gray release): a new value reaches a growing, sticky share of tenants.

A rollout is a platform aggregate (`<root>.evt._platform.rollout.<name>`): its
start (the values, the percentage, the cohort, which tenants it may reach), each
new percentage, and its end (promoted or aborted). What it does to each tenant
is recorded on that tenant's own config subject, so a tenant's events alone
give its effective config:

- `config.rollout_joined`: the tenant now sees the rollout's values (its own
  values stay underneath);
- `config.rollout_left`: the rollout's values go; promoted, they become the
  tenant's own values, aborted, its own values show again.

Which tenants: those whose point in the rollout's cohort (contracts/cohorts.py)
is below the percentage, among the tenants that carry the rollout's labels.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from tenantplane.contracts.commands import Command
from tenantplane.contracts.config import MAX_KEYS_PER_CHANGE, ConfigKey
from tenantplane.contracts.envelope import Event
from tenantplane.contracts.ids import Name
from tenantplane.contracts.tenants import Labels
from tenantplane.contracts.values import JsonData

Percent = Annotated[float, Field(ge=0, le=100)]
Values = Annotated[dict[ConfigKey, JsonData], Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)]
Outcome = Literal["promoted", "aborted"]


class _Rollout(Event):
    family: ClassVar[str] = "rollout"
    platform_scoped: ClassVar[bool] = True
    rollout: Name


class RolloutStarted(_Rollout):
    """A rollout began: `values` go to the first `percent` of `cohort` among the tenants
    carrying `match` labels; with `except_explicit`, a tenant's own value of a key wins."""

    event_type: ClassVar[str] = "rollout.started"
    values: Values
    percent: Percent
    cohort: Name
    match: Labels = Field(default_factory=dict)
    except_explicit: bool = False


class RolloutPercentSet(_Rollout):
    """A rollout now reaches the first `percent` of its cohort (only ever raised)."""

    event_type: ClassVar[str] = "rollout.percent_set"
    percent: Percent


class RolloutEnded(_Rollout):
    """A rollout ended: promoted (its values became every matched tenant's own) or
    aborted (every tenant is back to its own values)."""

    event_type: ClassVar[str] = "rollout.ended"
    outcome: Outcome


class _TenantRollout(Event):
    family: ClassVar[str] = "config"
    rollout: Name


class ConfigRolloutJoined(_TenantRollout):
    """The tenant now sees a rollout's `values`, over its own."""

    event_type: ClassVar[str] = "config.rollout_joined"
    values: Values


class ConfigRolloutLeft(_TenantRollout):
    """A rollout's `keys` no longer come from it: promoted, its values became the
    tenant's own, but for the `kept` keys (the tenant's own values, protected by the
    rollout's `except_explicit`); aborted, the tenant's own values (or none) show again."""

    event_type: ClassVar[str] = "config.rollout_left"
    keys: tuple[ConfigKey, ...] = Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)
    promoted: bool
    kept: tuple[ConfigKey, ...] = Field(default=(), max_length=MAX_KEYS_PER_CHANGE)

    @property
    def adopted(self) -> tuple[str, ...]:
        """The keys whose rollout value became the tenant's own."""
        return tuple(k for k in self.keys if k not in self.kept) if self.promoted else ()

    @property
    def released(self) -> tuple[str, ...]:
        """The keys whose own value (or none) shows again."""
        return tuple(k for k in self.keys if k not in self.adopted)


EVENTS: tuple[type[Event], ...] = (
    RolloutStarted,
    RolloutPercentSet,
    RolloutEnded,
    ConfigRolloutJoined,
    ConfigRolloutLeft,
)


class RolloutCommand(Command):
    """A command about one config rollout."""

    service: ClassVar[str] = "config"
    rollout: Name = Field(description="the rollout's name")


class StartRollout(RolloutCommand):
    """Start rolling `values` out to the first `percent` of a cohort of tenants.

    `cohort` defaults to the rollout's name; name the cohort of a route rollout to
    reach the same tenants. `match` keeps the rollout to tenants carrying those
    labels. With `except_explicit`, a key a tenant has its own value for keeps it.
    """

    name: ClassVar[str] = "rollout.start"
    values: Values
    percent: Percent
    cohort: Name | None = None
    match: Labels = Field(default_factory=dict)
    except_explicit: bool = False


class SetRolloutPercent(RolloutCommand):
    """Raise a rollout's percentage (a lower one is refused: abort instead)."""

    name: ClassVar[str] = "rollout.set"
    percent: Percent


class PromoteRollout(RolloutCommand):
    """Make the rollout's values every matched tenant's own config, and end it."""

    name: ClassVar[str] = "rollout.promote"


class AbortRollout(RolloutCommand):
    """Put every tenant back on its own values, and end the rollout."""

    name: ClassVar[str] = "rollout.abort"


COMMANDS: tuple[type[RolloutCommand], ...] = (
    StartRollout,
    SetRolloutPercent,
    PromoteRollout,
    AbortRollout,
)
