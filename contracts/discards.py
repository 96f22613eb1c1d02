"""Discarding an event that cannot be read: a void marker every reader honours.

The log is append-only, so a poison event (garbage, an unknown type, a future
schema version, a subject that disagrees with its envelope) is never removed.
An operator instead appends `EventDiscarded` naming it; from then on every
reader (write side, projections, history, time travel, the scheduler) skips it,
and what waited behind it goes on.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tenantplane.contracts.commands import Command
from tenantplane.contracts.envelope import Event

# Streams an event can be discarded from, as operators name them.
STREAM_NAMES = ("control", "jobs")


class EventDiscarded(Event):
    """An operator discarded the event at `seq` of `stream`; readers skip it."""

    event_type: ClassVar[str] = "event.discarded"
    family: ClassVar[str] = "discard"
    platform_scoped: ClassVar[bool] = True
    stream: str = Field(pattern=r"^(control|jobs)$")
    seq: int = Field(ge=1)
    subject: str = Field(min_length=1, max_length=512)
    # Why the event could not be read, when it was discarded.
    problem: str = Field(default="", max_length=1000)


class DiscardEvent(Command):
    """Discard one event that cannot be read (a reason is required)."""

    service: ClassVar[str] = "config"
    name: ClassVar[str] = "event.discard"
    stream: str = Field(default="control", pattern=r"^(control|jobs)$")
    seq: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2048)


EVENTS: tuple[type[Event], ...] = (EventDiscarded,)
COMMANDS: tuple[type[Command], ...] = (DiscardEvent,)
