"""The runtime every service shares: settings, event log, projector kernel, commands."""

from services.runtime.errors import (
    CommandFailed,
    ConcurrencyConflict,
    EventLogUnavailable,
    TenantplaneError,
    Unavailable,
)
from services.runtime.eventlog import Appended, EventLog, StoredEvent
from services.runtime.settings import Settings

__all__ = [
    "Appended",
    "CommandFailed",
    "ConcurrencyConflict",
    "EventLog",
    "EventLogUnavailable",
    "Settings",
    "StoredEvent",
    "TenantplaneError",
    "Unavailable",
]
