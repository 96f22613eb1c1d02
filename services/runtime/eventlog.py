"""The JetStream event log: streams, appends with optimistic concurrency, replay."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from nats.js import JetStreamContext
from nats.js.api import PubAck, RawStreamMsg, StorageType, StreamConfig
from nats.js.errors import (
    APIError,
    NotFoundError,
)

from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.errors import DecodeError
from tenantplane.contracts.registry import MAX_EVENT_BYTES, EventRegistry
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.consumers import (
    RawMessage,
    quietly_unsubscribe,
    read_raw,
    replay_config,
)
from tenantplane.services.runtime.discards import Discards
from tenantplane.services.runtime.errors import (
    AggregateBlocked,
    CommandFailed,
    ConcurrencyConflict,
    EventLogUnavailable,
    EventTooLarge,
)
from tenantplane.services.runtime.transient import NATS_UNAVAILABLE

WRONG_LAST_SEQUENCE = 10071
_ACTUAL_SEQ = re.compile(r"wrong last sequence: (\d+)")
DLQ_MAX_AGE_S = 90 * 24 * 3600
# How long an asynchronous publish waits for its ack before publishing again, awaited
# (its message id makes a second copy harmless).
ASYNC_ACK_TIMEOUT_S = 5.0
JOBS_MAX_AGE_S = 30 * 24 * 3600


@dataclass(frozen=True)
class Expected:
    """What the writer believes the aggregate's last sequence is.

    `seq` 0 means "no event yet". `over` widens the check to every subject
    matching a filter (e.g. lifecycle and config of one tenant).
    """

    seq: int
    over: str | None = None


@dataclass(frozen=True)
class Appended:
    """Where an event was stored."""

    subject: str
    seq: int
    duplicate: bool
    event_id: str = ""
    type: str = ""


class StoredEvent(NamedTuple):
    """An event read back from the log, with its place in it (a named tuple: one is
    made per event of every replay)."""

    seq: int
    subject: str
    envelope: Envelope


def _stored(fields: tuple[int, str, Envelope]) -> StoredEvent:
    """`StoredEvent(*fields)` without the named tuple's Python-level `__new__` (once per
    event of every replay)."""
    return tuple.__new__(StoredEvent, fields)


class EventLog:
    """Appends to and reads from the control-plane stream."""

    def __init__(
        self, js: JetStreamContext, subjects: Subjects, registry: EventRegistry | None = None
    ) -> None:
        """`registry` decodes what is read; None: every control-plane event, loaded when
        the first event is read (a CLI command that only appends or lists never pays it)."""
        self.js = js
        self.subjects = subjects
        self._registry = registry
        self.discards = Discards(js, subjects)

    @property
    def registry(self) -> EventRegistry:
        """The registry events are decoded with."""
        if self._registry is None:
            from tenantplane.contracts.catalog import EVENTS

            self._registry = EVENTS
        return self._registry

    async def ensure_streams(
        self,
        *,
        replicas: int = 1,
        duplicate_window_s: float = 600,
        jobs_max_age_s: float = JOBS_MAX_AGE_S,
        jobs_max_bytes: int = -1,
    ) -> None:
        """Create or update the streams; safe to call from every process at start."""
        await self.ensure_stream(
            StreamConfig(
                name=self.subjects.control_stream,
                subjects=self.subjects.control_subjects(),
                storage=StorageType.FILE,
                num_replicas=replicas,
                duplicate_window=duplicate_window_s,
                allow_direct=True,
            )
        )
        await self.ensure_stream(
            StreamConfig(
                name=self.subjects.jobs_stream,
                subjects=[self.subjects.all_jobs()],
                storage=StorageType.FILE,
                num_replicas=replicas,
                duplicate_window=duplicate_window_s,
                max_age=jobs_max_age_s,
                max_bytes=jobs_max_bytes,
                allow_direct=True,
            )
        )
        await self.ensure_stream(
            StreamConfig(
                name=self.subjects.dead_letter_stream,
                subjects=[self.subjects.dead_letters()],
                storage=StorageType.FILE,
                num_replicas=replicas,
                duplicate_window=duplicate_window_s,
                max_age=DLQ_MAX_AGE_S,
            )
        )

    async def ensure_stream(self, config: StreamConfig, timeout: float = 20.0) -> None:
        """Create or update one stream, waiting out a cluster that is still electing a leader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                try:
                    await self.js.update_stream(config)
                except NotFoundError:
                    await self.js.add_stream(config)
                return
            except NATS_UNAVAILABLE as e:
                if loop.time() >= deadline:
                    raise EventLogUnavailable(f"cannot reach JetStream: {e!r}") from e
            except APIError as e:
                # 503 / 10008: JetStream is not ready yet (no meta leader).
                if (e.code != 503 and e.err_code != 10008) or loop.time() >= deadline:
                    raise EventLogUnavailable(f"JetStream refused {config.name}: {e}") from e
            await asyncio.sleep(0.1)

    async def append(
        self, envelope: Envelope, expected: Expected | None = None, *, timeout: float = 10.0
    ) -> Appended:
        """Append one event to its aggregate's subject.

        The event id is the message id, so a retried append is stored once. An
        attempt that times out is retried until `timeout`; if a retry then meets
        a concurrency conflict because the earlier attempt did land (its ack was
        lost), that is recognised as success.

        Raises:
            EventTooLarge: the event is bigger than readers accept.
            ConcurrencyConflict: `expected` no longer holds.
            EventLogUnavailable: NATS did not answer within `timeout`.
        """
        subject = self.subjects.for_event(envelope)
        payload, headers = envelope.to_json(), _headers(envelope, expected)
        if len(payload) > MAX_EVENT_BYTES:
            # Refused here, with the same limit decoding enforces: it would be parked
            # by every reader and block its aggregate.
            raise EventTooLarge(subject, len(payload), MAX_EVENT_BYTES)
        try:
            ack = await self._publish(subject, payload, headers, timeout)
        except _Refused as refused:
            error = _conflict_or_unavailable(refused.error, subject, expected)
            if refused.attempts > 1 and isinstance(error, ConcurrencyConflict):
                landed = await self._landed(subject, envelope)
                if landed is not None:
                    return landed
            raise error from refused.error
        return Appended(subject, ack.seq, bool(ack.duplicate), envelope.event_id, envelope.type)

    async def _publish(
        self, subject: str, payload: bytes, headers: dict[str, str], timeout: float
    ) -> PubAck:
        """Publish and wait for the ack, retrying what got no answer until `timeout`.

        Raises:
            _Refused: JetStream answered with an error (after how many attempts).
            EventLogUnavailable: no answer within `timeout`.
        """
        loop = asyncio.get_running_loop()
        deadline, attempt = loop.time() + timeout, 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            try:
                return await self.js.publish(
                    subject,
                    payload,
                    timeout=max(0.05, min(attempt * 1.0, remaining)),
                    stream=self.subjects.stream_for(subject),
                    headers=headers,
                )
            except NATS_UNAVAILABLE as e:
                # No answer, or no stream leader yet (a cluster electing one): try again.
                if loop.time() + 0.05 >= deadline:
                    raise EventLogUnavailable(f"append to {subject} timed out: {e!r}") from e
                await asyncio.sleep(min(0.05 * attempt, 0.5))
            except APIError as e:
                raise _Refused(e, attempt) from e

    async def _landed(self, subject: str, envelope: Envelope) -> Appended | None:
        """Where `envelope` is stored, if it is the last event on `subject`."""
        try:
            msg = await self._last_msg(subject)
        except EventLogUnavailable:
            return None
        if msg is None or (msg.headers or {}).get("Nats-Msg-Id") != envelope.event_id:
            return None
        return Appended(subject, int(msg.seq or 0), True, envelope.event_id, envelope.type)

    async def _last_msg(self, subject: str) -> RawStreamMsg | None:
        """The last message on a concrete `subject` (None when there is none)."""
        try:
            return await self.js.get_last_msg(
                self.subjects.stream_for(subject), subject, direct=True
            )
        except NotFoundError:
            return None
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot read {subject}: {e!r}") from e

    async def append_many(self, envelopes: Sequence[Envelope]) -> list[Appended]:
        """Append events without per-event expectations, many in flight at once.

        Raises:
            EventTooLarge, EventLogUnavailable: as `append`.
        """
        return await self.publish_many(
            [(self.subjects.for_event(e), e.to_json(), e.event_id, e.type) for e in envelopes]
        )

    async def publish_many(self, messages: Sequence[tuple[str, bytes, str, str]]) -> list[Appended]:
        """Append encoded events (subject, payload, event id, type), many in flight at once.

        Published asynchronously (nats-py bounds what is in flight and waits for
        room); an event whose ack failed or timed out is published again the
        awaited way, which its message id makes safe: it is stored once either way.

        Raises:
            EventTooLarge, EventLogUnavailable: as `append`.
        """
        pending = []
        for subject, payload, event_id, _ in messages:
            if len(payload) > MAX_EVENT_BYTES:
                raise EventTooLarge(subject, len(payload), MAX_EVENT_BYTES)
            headers = {"Nats-Msg-Id": event_id}
            pending.append(await self.js.publish_async(subject, payload, headers=headers))
        if pending:
            # An ack lost to a reconnect never comes: wait a bounded time for them all.
            await asyncio.wait(pending, timeout=ASYNC_ACK_TIMEOUT_S)
        results: list[Appended] = []
        for (subject, payload, event_id, type_), ack in zip(messages, pending, strict=True):
            if ack.done() and ack.exception() is None:
                done = ack.result()
            else:
                ack.cancel()
                done = await self._publish_again(subject, payload, event_id)
            results.append(Appended(subject, done.seq, bool(done.duplicate), event_id, type_))
        return results

    async def _publish_again(self, subject: str, payload: bytes, event_id: str) -> PubAck:
        """Publish the awaited way an event whose asynchronous ack failed or never came."""
        try:
            return await self._publish(subject, payload, {"Nats-Msg-Id": event_id}, 10.0)
        except _Refused as refused:
            raise EventLogUnavailable(
                f"JetStream refused the append to {subject}: {refused.error}"
            ) from refused.error

    async def last_seq(self, subject: str) -> int:
        """The sequence of the last event on a concrete `subject` (0 when there is none)."""
        msg = await self._last_msg(subject)
        return 0 if msg is None else int(msg.seq or 0)

    async def pending(self, filters: Sequence[str], after_seq: int) -> int:
        """How many events matching `filters` come after `after_seq` (a projection's lag)."""
        config = replay_config(filters, after_seq + 1, None)
        try:
            stream = self.subjects.stream_for(filters[0])
            sub = await self.js.subscribe("", stream=stream, ordered_consumer=True, config=config)
            try:
                return int((await sub.consumer_info()).num_pending or 0)
            finally:
                await quietly_unsubscribe(sub)
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot measure lag: {e!r}") from e

    async def last_event(self, subject: str) -> StoredEvent | None:
        """The last readable event on a concrete `subject` (None when there is none).

        Raises:
            AggregateBlocked: the last event cannot be read and was not discarded.
        """
        msg = await self._last_msg(subject)
        if msg is None:
            return None
        raw = RawMessage(int(msg.seq or 0), subject, msg.data or b"", {}, 0)
        last = await self.readable(self.subjects.stream_for(subject), raw)
        if last is None:  # discarded: the last one before it
            async for stored in self.read(subject, stop_seq=raw.seq - 1):
                last = stored
        return last

    async def read_subject(self, subject: str, start_seq: int = 1) -> AsyncIterator[StoredEvent]:
        """The readable events of one concrete subject (an aggregate with few events).

        Uses JetStream's direct get, message by message: no consumer is created,
        so frequent small reads (a job's state) cost the server nothing to clean up.

        Raises:
            AggregateBlocked: an event cannot be read and was not discarded.
        """
        stream, seq = self.subjects.stream_for(subject), start_seq
        while True:
            try:
                msg = await self.js.get_msg(stream, seq, subject=subject, direct=True, next=True)
            except NotFoundError:
                return
            except NATS_UNAVAILABLE as e:
                raise EventLogUnavailable(f"cannot read {subject}: {e!r}") from e
            seq = int(msg.seq or 0)
            stored = await self.readable(stream, RawMessage(seq, subject, msg.data or b"", {}, 0))
            if stored is not None:
                yield stored
            seq += 1

    async def stream_exists(self, stream: str) -> bool:
        """Whether `stream` exists (a domain's is made by its service, maybe not yet)."""
        try:
            await self.js.stream_info(stream)
        except NotFoundError:
            return False
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot read stream info: {e!r}") from e
        return True

    async def head(self, stream: str | None = None) -> int:
        """The last sequence of a stream (the control stream by default)."""
        try:
            info = await self.js.stream_info(stream or self.subjects.control_stream)
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot read stream info: {e!r}") from e
        return int(info.state.last_seq)

    async def tail(
        self, filter_: str, start_seq: int, direct: int = 8
    ) -> AsyncIterator[tuple[RawMessage, StoredEvent | None]]:
        """As `scan` of one filter from `start_seq`, for a reader that is nearly up to date
        (an aggregate's cached state): its first `direct` messages are read by direct
        get, with no consumer, so writers refreshing many aggregates (replicas deciding
        on each other's appends) leave no consumers behind; the rest by `scan`.
        """
        stream, seq = self.subjects.stream_for(filter_), start_seq
        for _ in range(direct):
            try:
                msg = await self.js.get_msg(stream, seq, subject=filter_, direct=True, next=True)
            except NotFoundError:
                return
            except NATS_UNAVAILABLE as e:
                raise EventLogUnavailable(f"cannot read {filter_}: {e!r}") from e
            raw = RawMessage(int(msg.seq or 0), msg.subject or "", msg.data or b"", {}, 0)
            yield raw, await self.readable(stream, raw)
            seq = raw.seq + 1
        async for found in self.scan(filter_, start_seq=seq):
            yield found

    async def scan(
        self,
        filters: str | Sequence[str],
        *,
        start_seq: int = 1,
        start_time: datetime | None = None,
        stop_seq: int | None = None,
    ) -> AsyncIterator[tuple[RawMessage, StoredEvent | None]]:
        """Every message matching `filters` up to the head of the log, oldest first,
        with its event, or None for an event an operator discarded.

        Raises:
            AggregateBlocked: an event cannot be read and was not discarded.
        """
        first = filters if isinstance(filters, str) else filters[0]
        stream = self.subjects.stream_for(first)
        async for raw in read_raw(
            self.js, stream, filters, start_seq=start_seq, start_time=start_time
        ):
            if stop_seq is not None and raw.seq > stop_seq:
                return
            yield raw, await self.readable(stream, raw)

    async def read(
        self,
        filters: str | Sequence[str],
        *,
        start_seq: int = 1,
        start_time: datetime | None = None,
        stop_seq: int | None = None,
    ) -> AsyncIterator[StoredEvent]:
        """The events matching `filters`, oldest first, up to the head of the log;
        discarded events are left out.

        Raises:
            AggregateBlocked: an event cannot be read and was not discarded.
        """
        async for _, stored in self.scan(
            filters, start_seq=start_seq, start_time=start_time, stop_seq=stop_seq
        ):
            if stored is not None:
                yield stored

    async def readable(self, stream: str, raw: RawMessage) -> StoredEvent | None:
        """`raw` as an event, or None when it was discarded: the policy of aggregate reads.

        Raises:
            AggregateBlocked: it cannot be read and was not discarded.
        """
        if (stream, raw.seq) in self.discards:
            return None
        try:
            return self.decode(raw)
        except DecodeError as e:
            if await self.discards.contains(stream, raw.seq):
                return None
            raise AggregateBlocked(raw.subject, raw.seq, f"{type(e).__name__}: {e}") from e

    def decode(self, raw: RawMessage) -> StoredEvent:
        """A stored message as a typed event at its place in the log.

        Raises:
            DecodeError: the message is not a valid event (see `EventRegistry.decode`),
                or it is stored on a subject other than its aggregate's.
        """
        envelope = (self._registry or self.registry).decode(raw.data)
        self.subjects.check(raw.subject, envelope)
        return _stored((raw.seq, raw.subject, envelope))


class _Refused(CommandFailed):
    """JetStream answered a publish with an error."""

    def __init__(self, error: APIError, attempts: int) -> None:
        super().__init__(f"JetStream refused: {error}")
        self.error, self.attempts = error, attempts


def _headers(envelope: Envelope, expected: Expected | None) -> dict[str, str]:
    headers = {"Nats-Msg-Id": envelope.event_id}
    if expected is not None:
        headers["Nats-Expected-Last-Subject-Sequence"] = str(expected.seq)
        if expected.over is not None:
            headers["Nats-Expected-Last-Subject-Sequence-Subject"] = expected.over
    return headers


def _conflict_or_unavailable(error: APIError, subject: str, expected: Expected | None) -> Exception:
    if error.err_code == WRONG_LAST_SEQUENCE and expected is not None:
        match = _ACTUAL_SEQ.search(error.description or "")
        actual = int(match.group(1)) if match else None
        return ConcurrencyConflict(expected.over or subject, expected.seq, actual)
    return EventLogUnavailable(f"JetStream refused the append to {subject}: {error.description}")
