"""Commands over NATS request/reply: the client, and what a handler answers.

`CommandClient` sends a command and raises the reply's error by name. A
handler returns an `Outcome`; serving handlers on FastStream is the server's
part (`services/runtime/handlers.py`), so clients load no server framework.
An outage answers `unavailable` (a leader change, a restart: the caller
retries with the same idempotency key).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError, TimeoutError

from tenantplane.contracts.commands import (
    AppendedEvent,
    Command,
    CommandError,
    CommandReply,
    ErrorCode,
)
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.errors import Unavailable, error_from_reply
from tenantplane.services.runtime.eventlog import Appended
from tenantplane.services.runtime.transient import unavailable_raised

C = TypeVar("C", bound=Command)
Handler = Callable[[C], Awaitable["Outcome"]]
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a command handler did: the events it appended, or replayed from before."""

    appended: Sequence[Appended] = ()
    replayed: bool = False
    result: dict[str, Any] | None = None

    def reply(self) -> CommandReply:
        """The success reply for this outcome."""
        events = tuple(
            AppendedEvent(event_id=a.event_id, type=a.type, subject=a.subject, seq=a.seq)
            for a in self.appended
        )
        return CommandReply(ok=True, events=events, replayed=self.replayed, result=self.result)


def reply_error(code: ErrorCode, message: str, **details: Any) -> CommandReply:
    """An error reply."""
    return CommandReply(ok=False, error=CommandError(code=code, message=message, details=details))


class CommandClient:
    """Sends commands and returns their replies, raising the reply's error by name."""

    def __init__(self, nc: NATS, subjects: Subjects, timeout: float = 5.0) -> None:
        self.nc = nc
        self.subjects = subjects
        self.timeout = timeout

    async def send(self, command: Command) -> CommandReply:
        """Send `command`; retried requests reuse its idempotency key.

        Raises:
            TenantplaneError: the named error of a refused command.
            Unavailable: no service answered in time, or NATS is not reachable.
        """
        subject = command.subject(self.subjects)
        with unavailable_raised():
            try:
                msg = await self.nc.request(
                    subject, command.model_dump_json().encode(), timeout=self.timeout
                )
            # NATS answered; the service did not (it is not running, or is overloaded).
            except NoRespondersError as e:
                raise Unavailable(f"no {command.service} service is running") from e
            except TimeoutError as e:
                raise Unavailable(f"{command.service} did not answer {command.name}") from e
        reply = CommandReply.model_validate_json(msg.data)
        if reply.error is not None:
            raise error_from_reply(reply.error)
        return reply
