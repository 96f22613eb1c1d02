"""The error tree of the runtime; every service error derives from `TenantplaneError`.

Each wire code (`contracts.commands.ErrorCode`) has exactly one class here,
registered in `ERRORS`, so a refused command is raised on the caller's side as
the same named exception the service raised. A more specific class may share
its code's class as a base (`EventLogUnavailable` is an `Unavailable`); on the
wire it travels as that base.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Self

from tenantplane.contracts.commands import CommandError, ErrorCode


class TenantplaneError(Exception):
    """Root of every error tenantplane raises at runtime."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_reply_error(self) -> CommandError:
        """The error as it travels in a command reply."""
        return CommandError(code=self.code, message=self.message, details=self.details)

    @classmethod
    def from_reply(cls, error: CommandError) -> Self:
        """This error rebuilt from a reply's error, with the service's own message."""
        exc = cls._from_details(error.message, dict(error.details))
        exc.message = error.message
        exc.args = (error.message,)
        return exc

    @classmethod
    def _from_details(cls, message: str, details: dict[str, Any]) -> Self:
        return cls(message, **details)


class CommandFailed(TenantplaneError):
    """A failure with no name of its own (`internal`): a command the service could not
    complete, or a fault inside a process; its log has the details."""


class InvalidRequest(TenantplaneError):
    """A command or argument failed validation."""

    code = ErrorCode.INVALID_REQUEST


class InvalidInput(InvalidRequest):
    """What the caller gave on its own side is wrong (a file, an argument), found before
    anything was sent: `tenantctl` exits 2, as for bad usage."""


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

    @classmethod
    def _from_details(cls, message: str, details: dict[str, Any]) -> Self:
        actual = details.get("actual")
        return cls(
            str(details.get("subject", "")),
            int(details.get("expected", -1)),
            None if actual is None else int(actual),
        )


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


class StaleRebuild(InvalidTransition):
    """A rebuilt read model was not swapped in: the live one is further along."""


class InvalidConfigValue(TenantplaneError):
    """A config value breaks the config schema."""

    code = ErrorCode.INVALID_CONFIG_VALUE


class JobNotFound(TenantplaneError):
    """No such job (never submitted, or past the jobs stream's retention)."""

    code = ErrorCode.JOB_NOT_FOUND


class UnknownJobKind(TenantplaneError):
    """No worker of the tenant's pool runs this kind of job: a submit is refused with
    nothing appended (rather than failing three times and being dead-lettered)."""

    code = ErrorCode.UNKNOWN_JOB_KIND


class NoRoute(TenantplaneError):
    """Neither a pin, a rollout nor a default sends this tenant anywhere."""

    code = ErrorCode.NO_ROUTE


class AggregateBlocked(TenantplaneError):
    """An aggregate's subject holds an event that cannot be read, and it was not discarded."""

    code = ErrorCode.AGGREGATE_BLOCKED

    def __init__(self, subject: str, seq: int, reason: str) -> None:
        super().__init__(
            f"{subject} is blocked by event {seq} that cannot be read ({reason}); "
            f"inspect it with 'tenantctl dlq list' and discard it with "
            f"'tenantctl dlq discard {seq} --reason ...'",
            subject=subject,
            seq=seq,
            reason=reason,
        )
        self.subject = subject
        self.seq = seq
        self.reason = reason

    @classmethod
    def _from_details(cls, message: str, details: dict[str, Any]) -> Self:
        return cls(
            str(details.get("subject", "")),
            int(details.get("seq", 0)),
            str(details.get("reason", "")),
        )


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
        self.subject = subject
        self.size = size
        self.limit = limit

    @classmethod
    def _from_details(cls, message: str, details: dict[str, Any]) -> Self:
        return cls(
            str(details.get("subject", "")),
            int(details.get("size", 0)),
            int(details.get("limit", 0)),
        )


class SecretUnavailable(TenantplaneError):
    """A secret cannot be opened: its data key was destroyed, or no master key opens it."""

    code = ErrorCode.SECRET_UNAVAILABLE


class Unavailable(TenantplaneError):
    """A server tenantplane needs (NATS, Redis, the SQL database) did not answer in time.

    `server` names the server ("nats", "redis", "database") when this process
    could not connect to it, so a CLI can say how to point at it. It is not
    sent on the wire: another process's connections mean nothing to the caller.
    """

    code = ErrorCode.UNAVAILABLE
    server: str | None = None

    def __init__(self, message: str, *, server: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        if server is not None:
            self.server = server


class EventLogUnavailable(Unavailable):
    """NATS or the stream could not be reached in time."""


class StoreUnavailable(Unavailable):
    """A read-model store (Redis or the SQL database) could not be reached or refused a write."""


class ProjectionTimeout(Unavailable):
    """A projection did not reach a sequence in time."""


def _one_class_per_code(
    *classes: type[TenantplaneError],
) -> Mapping[ErrorCode, type[TenantplaneError]]:
    by_code = {cls.code: cls for cls in classes}
    if len(by_code) != len(classes) or set(by_code) != set(ErrorCode):
        missing = sorted(set(ErrorCode) - set(by_code))
        raise TypeError(f"every error code needs exactly one class; missing: {missing}")
    return MappingProxyType(by_code)


# The one registry of wire codes: what `error_from_reply` raises for each.
ERRORS = _one_class_per_code(
    CommandFailed,
    InvalidRequest,
    ConcurrencyConflict,
    TenantNotFound,
    TenantExists,
    TenantSuspended,
    InvalidTransition,
    InvalidConfigValue,
    JobNotFound,
    UnknownJobKind,
    NoRoute,
    SecretUnavailable,
    AggregateBlocked,
    EventTooLarge,
    Unavailable,
)


def error_from_reply(error: CommandError) -> TenantplaneError:
    """Turn a reply's error back into the named exception a caller can catch."""
    return ERRORS[error.code].from_reply(error)
