"""Cron schedules of a tenant: events and commands.

A schedule fires a job of `kind` with `args` at each time its cron expression
names (in its time zone), offset by a stable per-tenant stagger. Each firing is
an event with the message id `<schedule>:<fire time>`, so any number of
scheduler replicas record it once.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from zoneinfo import available_timezones

from croniter import croniter
from pydantic import AfterValidator, AwareDatetime, Field, JsonValue

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.envelope import Event, Message
from tenantplane.contracts.jobs import JobId, Kind, Priority

ScheduleId = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")]
Overlap = Literal["skip", "allow"]
CatchUp = Literal["skip", "once", "all"]


def _cron(expression: str) -> str:
    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a cron expression (5 fields, or 6 with seconds)")
    return expression


def _zone(name: str) -> str:
    if name not in available_timezones():
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)")
    return name


Cron = Annotated[str, AfterValidator(_cron)]
TimeZone = Annotated[str, AfterValidator(_zone)]


class ScheduleSpec(Message):
    """What a schedule does and when: shared by the command and the event."""

    cron: Cron
    timezone: TimeZone = "UTC"
    kind: Kind
    args: dict[str, JsonValue] = Field(default_factory=dict)
    priority: Priority = 5
    overlap: Overlap = "skip"
    catch_up: CatchUp = "once"
    catch_up_window_s: float = Field(default=3600.0, ge=0, le=31 * 86_400)
    stagger_s: float = Field(default=0.0, ge=0, le=3600)


class _Schedule(Event):
    family: ClassVar[str] = "schedule"
    schedule_id: ScheduleId


class ScheduleDefined(_Schedule, ScheduleSpec):
    """A schedule was created or changed."""

    event_type: ClassVar[str] = "schedule.defined"


class SchedulePaused(_Schedule):
    """A schedule stops firing until resumed."""

    event_type: ClassVar[str] = "schedule.paused"


class ScheduleResumed(_Schedule):
    """A paused schedule fires again (missed times follow its catch-up policy)."""

    event_type: ClassVar[str] = "schedule.resumed"


class ScheduleRemoved(_Schedule):
    """A schedule is gone."""

    event_type: ClassVar[str] = "schedule.removed"


class ScheduleFired(_Schedule):
    """A fire time came: a job was requested, or skipped (overlap policy)."""

    event_type: ClassVar[str] = "schedule.fired"
    fire_time: AwareDatetime
    job_id: JobId | None = None
    skipped: str = ""


EVENTS: tuple[type[Event], ...] = (
    ScheduleDefined,
    SchedulePaused,
    ScheduleResumed,
    ScheduleRemoved,
    ScheduleFired,
)


class _ScheduleCommand(TenantCommand):
    service: ClassVar[str] = "scheduler"
    schedule_id: ScheduleId


class DefineSchedule(_ScheduleCommand, ScheduleSpec):
    """Create or change a schedule."""

    name: ClassVar[str] = "schedule.define"


class PauseSchedule(_ScheduleCommand):
    """Stop a schedule firing."""

    name: ClassVar[str] = "schedule.pause"


class ResumeSchedule(_ScheduleCommand):
    """Let a paused schedule fire again."""

    name: ClassVar[str] = "schedule.resume"


class RemoveSchedule(_ScheduleCommand):
    """Remove a schedule."""

    name: ClassVar[str] = "schedule.remove"


COMMANDS: tuple[type[TenantCommand], ...] = (
    DefineSchedule,
    PauseSchedule,
    ResumeSchedule,
    RemoveSchedule,
)
