"""The typed language of tenantplane: events, commands, envelope, subjects, keys.

Pure data, no I/O. `EVENTS` is the registry every service decodes with.

Names load on first use: importing one contract module (an error, an id, the
subjects) does not load every event and command, which keeps `tenantctl --help`
and the SDK's imports short.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from tenantplane.contracts.catalog import COMMANDS, EVENTS
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

_EXPORTS = {
    "COMMANDS": "catalog", "EVENTS": "catalog",
    "Command": "commands", "CommandError": "commands", "CommandReply": "commands",
    "ErrorCode": "commands",
    "Envelope": "envelope", "Event": "envelope", "Message": "envelope",
    "ContractError": "errors", "DecodeError": "errors", "InvalidEvent": "errors",
    "InvalidTenantId": "errors", "MalformedMessage": "errors", "UnknownEventType": "errors",
    "UnknownSchemaVersion": "errors",
    "TenantId": "ids", "validate_tenant_id": "ids",
    "Keys": "keys", "EventRegistry": "registry", "Upcaster": "registry",
    "Subjects": "subjects",
}  # fmt: skip

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tenantplane.contracts' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tenantplane.contracts.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
