"""The typed language of tenantplane: events, commands, envelope, subjects, keys.

Pure data, no I/O. `EVENTS` is the registry every service decodes with.
"""

from __future__ import annotations

from contracts import config, discards, jobs, routing, schedules, tenants
from contracts.commands import Command, CommandError, CommandReply, ErrorCode
from contracts.envelope import Envelope, Event, Message
from contracts.errors import (
    ContractError,
    DecodeError,
    InvalidEvent,
    InvalidTenantId,
    MalformedMessage,
    UnknownEventType,
    UnknownSchemaVersion,
)
from contracts.ids import TenantId, validate_tenant_id
from contracts.keys import Keys
from contracts.registry import EventRegistry, Upcaster
from contracts.subjects import Subjects

EVENTS = EventRegistry.of(
    [
        *tenants.EVENTS,
        *config.EVENTS,
        *routing.EVENTS,
        *jobs.EVENTS,
        *schedules.EVENTS,
        *discards.EVENTS,
    ]
)
COMMANDS: tuple[type[Command], ...] = (
    *tenants.COMMANDS,
    *config.COMMANDS,
    *routing.COMMANDS,
    *schedules.COMMANDS,
    *discards.COMMANDS,
)

__all__ = [
    "COMMANDS",
    "EVENTS",
    "Command",
    "CommandError",
    "CommandReply",
    "ContractError",
    "DecodeError",
    "Envelope",
    "ErrorCode",
    "Event",
    "EventRegistry",
    "InvalidEvent",
    "InvalidTenantId",
    "Keys",
    "MalformedMessage",
    "Message",
    "Subjects",
    "TenantId",
    "UnknownEventType",
    "UnknownSchemaVersion",
    "Upcaster",
    "validate_tenant_id",
]
