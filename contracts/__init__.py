"""The typed language of tenantplane: events, commands, envelope, subjects, keys.

Pure data, no I/O. `EVENTS` is the registry every service decodes with.
"""

from __future__ import annotations

from tenantplane.contracts import config, discards, jobs, routing, schedules, tenants
from tenantplane.contracts.commands import Command, CommandError, CommandReply, ErrorCode
from tenantplane.contracts.envelope import Envelope, Event, Message
from tenantplane.contracts.errors import (
    ContractError,
    DecodeError,
    InvalidEvent,
    InvalidTenantId,
    MalformedMessage,
    UnknownEventType,
    UnknownSchemaVersion,
)
from tenantplane.contracts.ids import TenantId, validate_tenant_id
from tenantplane.contracts.keys import Keys
from tenantplane.contracts.registry import EventRegistry, Upcaster
from tenantplane.contracts.subjects import Subjects

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
    config.ShowSealingKey,
    *routing.COMMANDS,
    *jobs.COMMANDS,
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
