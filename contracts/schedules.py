"""Cron schedules of a tenant: events and commands.

A schedule fires a job of `kind` with `args` at each time its cron expression
names (in its time zone), offset by a stable per-tenant stagger. Each firing is
an event with the message id `<schedule>:<fire time>`, so any number of
scheduler replicas record it once.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, AwareDatetime, Field, GetJsonSchemaHandler, WithJsonSchema
from pydantic_core import CoreSchema

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.envelope import Event, Message
from tenantplane.contracts.ids import JobId, Name
from tenantplane.contracts.jobs import Kind, Priority
from tenantplane.contracts.values import JsonData

ScheduleId = Name
Overlap = Literal["skip", "allow"]
CatchUp = Literal["skip", "once", "all"]


def _cron_field(value: str) -> str:
    step = r"/[1-9][0-9]?"
    item = rf"(?:\*(?:{step})?|(?:{value})(?:-(?:{value}))?(?:{step})?)"
    return rf"{item}(?:,{item})*"


_SIXTY = _cron_field(r"[0-5]?[0-9]")
_HOUR = _cron_field(r"[01]?[0-9]|2[0-3]")
_DAY = _cron_field(r"0?[1-9]|[12][0-9]|3[01]")
_MONTH = _cron_field(r"0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec")
_WEEKDAY = _cron_field(r"[0-7]|sun|mon|tue|wed|thu|fri|sat")
_MACRO = r"@(?:yearly|annually|monthly|weekly|daily|midnight|hourly)"
# The portable cron the exported schema promises: minute hour day month weekday, seconds
# last when there are six fields, or a macro. Every expression it matches is one croniter
# takes; croniter also takes more (L, W, #, H, upper-case names), which the code keeps
# accepting so that schedules defined with them still replay.
CRON_PATTERN = rf"^(?:{_MACRO}|{_SIXTY} {_HOUR} {_DAY} {_MONTH} {_WEEKDAY}(?: {_SIXTY})?)$"


def _cron(expression: str) -> str:
    from croniter import croniter  # on first use: most importers never check a cron

    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a cron expression (5 fields, or 6 with seconds)")
    return expression


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(name: str) -> str:
    if name not in _zones():
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)")
    return name


class _ZoneNames:
    """The JSON Schema of a time zone: the names this installation knows, as an enum."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(_zones())}


Cron = Annotated[
    str,
    AfterValidator(_cron),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": CRON_PATTERN,
            "description": "minute hour day month weekday [second], or @hourly, @daily, ...",
        }
    ),
]
TimeZone = Annotated[str, AfterValidator(_zone), _ZoneNames()]


class ScheduleSpec(Message):
    """What a schedule does and when: shared by the command and the event."""

    cron: Cron
    timezone: TimeZone = "UTC"
    kind: Kind
    args: dict[str, JsonData] = Field(default_factory=dict)
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
