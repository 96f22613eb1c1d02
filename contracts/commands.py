"""Command requests and replies: the request/reply wire format of every service."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from tenantplane.contracts.envelope import Message
from tenantplane.contracts.ids import TenantId
from tenantplane.contracts.subjects import Subjects


def _new_key() -> str:
    return str(uuid.uuid4())


class Command(Message):
    """Base of every command. Subclasses set `service` and `name`.

    `idempotency_key` identifies the intent: the same command sent twice with
    one key is applied once, and the second reply repeats the first.
    """

    service: ClassVar[str]
    name: ClassVar[str]

    idempotency_key: str = Field(default_factory=_new_key, min_length=1, max_length=128)
    actor: str = Field(min_length=1, max_length=256)
    reason: str = Field(default="", max_length=2048)
    correlation_id: str | None = Field(default=None, max_length=128)

    def subject(self, subjects: Subjects) -> str:
        """Where this command is sent."""
        return subjects.command(self.service, self.name)

    @classmethod
    def served_on(cls, subjects: Subjects) -> str:
        """Where the owning service listens for this command."""
        return subjects.command(cls.service, cls.name)


class TenantCommand(Command):
    """A command about one tenant."""

    tenant_id: TenantId


class ErrorCode(StrEnum):
    """The kinds of failure a command reply can carry: the one list of wire error codes.

    docs/contracts.md says what each means and the exit code `tenantctl` gives it.
    """

    INVALID_REQUEST = "invalid_request"
    CONCURRENCY_CONFLICT = "concurrency_conflict"
    TENANT_NOT_FOUND = "tenant_not_found"
    TENANT_EXISTS = "tenant_exists"
    TENANT_SUSPENDED = "tenant_suspended"
    INVALID_TRANSITION = "invalid_transition"
    INVALID_CONFIG_VALUE = "invalid_config_value"
    JOB_NOT_FOUND = "job_not_found"
    UNKNOWN_JOB_KIND = "unknown_job_kind"
    NO_ROUTE = "no_route"
    SECRET_UNAVAILABLE = "secret_unavailable"
    AGGREGATE_BLOCKED = "aggregate_blocked"
    EVENT_TOO_LARGE = "event_too_large"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class CommandError(Message):
    """Why a command was refused."""

    code: ErrorCode
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class AppendedEvent(Message):
    """One event a command appended."""

    event_id: str
    type: str
    subject: str
    seq: int


class CommandReply(Message):
    """The reply to every command: the appended events, or an error."""

    ok: bool
    events: tuple[AppendedEvent, ...] = ()
    error: CommandError | None = None
    # True when the command's idempotency key had been applied before.
    replayed: bool = False
    # The answer of a query-like command (e.g. revealed secrets); never logged.
    result: dict[str, Any] | None = None

    @property
    def seq(self) -> int | None:
        """The stream sequence of the last appended event (for read-your-writes)."""
        return self.events[-1].seq if self.events else None
