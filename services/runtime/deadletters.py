"""The dead-letter stream: events a projection could not apply, with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.js import JetStreamContext

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.consumers import RawMessage, read_raw

H_SUBJECT = "Tp-Original-Subject"
H_SEQ = "Tp-Original-Seq"
H_REASON = "Tp-Reason"
H_BEHIND = "Tp-Blocked-Behind"
UNKNOWN_TENANT = "_unknown"


@dataclass(frozen=True)
class DeadLetter:
    """One parked event: where it came from, why, and its original bytes."""

    dlq_seq: int
    projection: str
    subject: str
    seq: int
    reason: str
    blocked_behind: int | None
    data: bytes


class DeadLetters:
    """Parks, lists and removes dead letters of projections."""

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self.js = js
        self.subjects = subjects

    async def park(
        self, projection: str, raw: RawMessage, reason: str, behind: int | None = None
    ) -> None:
        """Store `raw` as a dead letter of `projection` (once, however often it is retried)."""
        tenant = self.subjects.tenant_of(raw.subject) or UNKNOWN_TENANT
        headers = {
            "Nats-Msg-Id": f"{projection}:{raw.seq}",
            H_SUBJECT: raw.subject,
            H_SEQ: str(raw.seq),
            H_REASON: reason[:1000],
        }
        if behind is not None:
            headers[H_BEHIND] = str(behind)
        await self.js.publish(
            self.subjects.dead_letter(projection, tenant),
            raw.data,
            stream=self.subjects.dead_letter_stream,
            headers=headers,
        )

    async def list(self, projection: str | None = None) -> AsyncIterator[DeadLetter]:
        """Dead letters of one projection (or all), oldest first."""
        async for raw in read_raw(
            self.js, self.subjects.dead_letter_stream, self.subjects.dead_letters(projection)
        ):
            yield DeadLetter(
                dlq_seq=raw.seq,
                projection=raw.subject.split(".")[2],
                subject=raw.headers.get(H_SUBJECT, ""),
                seq=int(raw.headers.get(H_SEQ, "0")),
                reason=raw.headers.get(H_REASON, ""),
                blocked_behind=int(raw.headers[H_BEHIND]) if H_BEHIND in raw.headers else None,
                data=raw.data,
            )

    async def remove(self, letter: DeadLetter) -> None:
        """Delete a dead letter once it has been re-driven."""
        await self.js.delete_msg(self.subjects.dead_letter_stream, letter.dlq_seq)

    def as_raw(self, letter: DeadLetter) -> RawMessage:
        """The original message of a dead letter, to apply again."""
        return RawMessage(letter.seq, letter.subject, letter.data, {}, 0)
