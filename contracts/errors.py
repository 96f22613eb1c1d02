"""Errors raised while building or decoding contracts."""

from __future__ import annotations

from pydantic import ValidationError


class ContractError(Exception):
    """Root of every contract error."""


class InvalidTenantId(ContractError, ValueError):
    """A tenant id is not a valid slug."""


class DecodeError(ContractError):
    """Wire bytes could not be turned into a typed message."""


class MalformedMessage(DecodeError):
    """The bytes are not a JSON envelope of the expected shape."""


class UnknownEventType(DecodeError):
    """The envelope names an event type this code does not know."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class UnknownSchemaVersion(DecodeError):
    """The envelope's schema version is newer than this code, or has no upcaster."""

    def __init__(self, event_type: str, version: int, known: int) -> None:
        super().__init__(
            f"event type {event_type!r} at schema version {version}; this code knows up to {known}"
        )
        self.event_type = event_type
        self.version = version


class InvalidEvent(DecodeError):
    """The event's data failed validation against its contract."""


class SubjectMismatch(DecodeError):
    """The event was stored on a subject other than the one its envelope names."""


def describe(error: ValidationError, limit: int = 5) -> str:
    """A one-line summary of a validation error: where and what, without echoing input."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
