"""The runtime every service shares: settings, event log, projector kernel, commands."""

from tenantplane.services.runtime.errors import (
    CommandFailed,
    ConcurrencyConflict,
    EventLogUnavailable,
    TenantplaneError,
    Unavailable,
)
from tenantplane.services.runtime.eventlog import Appended, EventLog, StoredEvent
from tenantplane.services.runtime.settings import Settings

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
