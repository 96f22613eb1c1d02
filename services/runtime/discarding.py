"""Serving `DiscardEvent`: an operator voids one event that cannot be read.

Only an event that is really bad can be discarded: one that does not decode or
disagrees with its subject, or one a reader parked for its own sake (its apply
failed). A valid event is refused: skipping it would make read models and the
write side disagree with the log.
"""

from __future__ import annotations

from nats.js.errors import NotFoundError

from tenantplane.contracts.discards import DiscardEvent, EventDiscarded
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.errors import DecodeError
from tenantplane.contracts.ids import PLATFORM, derived_event_id, validate_tenant_id
from tenantplane.services.runtime.commands import Outcome
from tenantplane.services.runtime.consumers import RawMessage
from tenantplane.services.runtime.deadletters import DeadLetters
from tenantplane.services.runtime.errors import EventLogUnavailable, InvalidRequest
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.transient import NATS_UNAVAILABLE


class EventDiscarding:
    """Appends the void marker of a bad event, once."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.dead_letters = DeadLetters(log.js, log.subjects)

    async def handle(self, command: DiscardEvent) -> Outcome:
        """Discard the event `command` names, or say why not."""
        raw = await self._stored(command.stream, command.seq)
        problem = await self._problem(raw)
        if problem is None:
            raise InvalidRequest(
                f"event {raw.seq} on {raw.subject} is readable and no reader parked it; "
                "only an event that cannot be read (or whose apply fails) can be discarded",
                seq=raw.seq,
            )
        tenant = self.log.subjects.tenant_of(raw.subject)
        data = EventDiscarded(
            stream=command.stream, seq=raw.seq, subject=raw.subject, problem=problem[:1000]
        )
        envelope = Envelope.wrap(
            data,
            tenant_id=tenant if tenant and _is_tenant(tenant) else PLATFORM,
            actor=command.actor,
            reason=command.reason,
            event_id=derived_event_id(f"discard/{command.stream}/{raw.seq}", 0),
            correlation_id=command.correlation_id or command.idempotency_key,
            causation_id=command.idempotency_key,
        )
        appended = await self.log.append(envelope)
        return Outcome((appended,), replayed=appended.duplicate)

    async def _stored(self, stream_name: str, seq: int) -> RawMessage:
        stream = self.log.subjects.stream_named(stream_name)
        try:
            msg = await self.log.js.get_msg(stream, seq, direct=True)
        except NotFoundError:
            raise InvalidRequest(f"no event {seq} in the {stream_name} stream") from None
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot read event {seq}: {e!r}") from e
        return RawMessage(int(msg.seq or seq), msg.subject or "", msg.data or b"", {}, 0)

    async def _problem(self, raw: RawMessage) -> str | None:
        """Why `raw` cannot be read or applied (None when nothing is wrong with it)."""
        try:
            self.log.decode(raw)
        except DecodeError as e:
            return f"{type(e).__name__}: {e}"
        async for letter in self.dead_letters.list():
            parked_itself = letter.blocked_behind is None
            if parked_itself and letter.seq == raw.seq and letter.subject == raw.subject:
                return letter.reason
        return None


def _is_tenant(token: str) -> bool:
    try:
        validate_tenant_id(token)
    except ValueError:
        return False
    return True
