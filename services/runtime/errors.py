"""The error tree of the runtime; every service error derives from `TenantplaneError`."""

from __future__ import annotations

from typing import Any

from contracts.commands import CommandError, ErrorCode


class TenantplaneError(Exception):
    """Root of every error tenantplane raises at runtime."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_reply_error(self) -> CommandError:
        """The error as it travels in a command reply."""
        return CommandError(code=self.code, message=self.message, details=self.details)


class ConcurrencyConflict(TenantplaneError):
    """Another writer appended to the aggregate since its state was read."""

    code = ErrorCode.CONCURRENCY_CONFLICT

    def __init__(self, subject: str, expected: int, actual: int | None = None) -> None:
        shown = "unknown" if actual is None else str(actual)
        super().__init__(
            f"{subject}: expected last sequence {expected}, the log is at {shown}",
            subject=subject,
            expected=expected,
            actual=actual,
        )
        self.subject = subject
        self.expected = expected
        self.actual = actual


class EventLogUnavailable(TenantplaneError):
    """NATS or the stream could not be reached in time."""

    code = ErrorCode.UNAVAILABLE


class InvalidRequest(TenantplaneError):
    """A command or argument failed validation."""

    code = ErrorCode.INVALID_REQUEST


class TenantNotFound(TenantplaneError):
    """No such tenant (never registered, or offboarded)."""

    code = ErrorCode.TENANT_NOT_FOUND


class TenantExists(TenantplaneError):
    """A tenant with that id was registered before."""

    code = ErrorCode.TENANT_EXISTS


class TenantSuspended(TenantplaneError):
    """The tenant is suspended."""

    code = ErrorCode.TENANT_SUSPENDED


class InvalidTransition(TenantplaneError):
    """The command does not apply in the aggregate's current state."""

    code = ErrorCode.INVALID_TRANSITION


class InvalidConfigValue(TenantplaneError):
    """A config value breaks the config schema."""

    code = ErrorCode.INVALID_CONFIG_VALUE


class AggregateBlocked(TenantplaneError):
    """An aggregate's subject holds an event that cannot be read, and it was not discarded."""

    code = ErrorCode.AGGREGATE_BLOCKED

    def __init__(self, subject: str, seq: int, reason: str) -> None:
        super().__init__(
            f"{subject} is blocked by event {seq} that cannot be read ({reason}); inspect it "
            f"with 'tenantctl dlq list' and discard it with "
            f"'tenantctl dlq discard {seq} --reason ...'",
            subject=subject,
            seq=seq,
            reason=reason,
        )
        self.subject, self.seq, self.reason = subject, seq, reason


class EventTooLarge(InvalidRequest):
    """The event a command would append is bigger than readers accept."""

    code = ErrorCode.EVENT_TOO_LARGE

    def __init__(self, subject: str, size: int, limit: int) -> None:
        super().__init__(
            f"the event for {subject} would be {size} bytes; the limit is {limit}",
            subject=subject,
            size=size,
            limit=limit,
        )


class CommandFailed(TenantplaneError):
    """A command reply carried an error code this client has no class for."""


class ProjectionTimeout(TenantplaneError):
    """A projection did not reach a sequence in time."""

    code = ErrorCode.UNAVAILABLE


_BY_CODE: dict[ErrorCode, type[TenantplaneError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        TenantNotFound,
        TenantExists,
        TenantSuspended,
        InvalidTransition,
        InvalidConfigValue,
        EventLogUnavailable,
    )
}


def error_from_reply(error: CommandError) -> TenantplaneError:
    """Turn a reply's error back into the named exception a caller can catch."""
    if error.code is ErrorCode.AGGREGATE_BLOCKED:
        details = error.details
        return AggregateBlocked(
            str(details.get("subject", "")), int(details.get("seq", 0)), str(details.get("reason"))
        )
    if error.code is ErrorCode.EVENT_TOO_LARGE:
        details = error.details
        return EventTooLarge(
            str(details.get("subject", "")), int(details.get("size", 0)), int(details["limit"])
        )
    if error.code is ErrorCode.CONCURRENCY_CONFLICT:
        return ConcurrencyConflict(
            str(error.details.get("subject", "")),
            int(error.details.get("expected", -1)),
            error.details.get("actual"),
        )
    cls = _BY_CODE.get(error.code, CommandFailed)
    exc = cls(error.message, **error.details)
    exc.code = error.code
    return exc
