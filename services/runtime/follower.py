"""One follower of the log for every reader, with one bad-event policy.

Projectors, the scheduler and the cron firer each follow part of a stream from
a position, through the replay and then live. `Follower` delivers the raw
messages in order and in batches; `Gate` turns a batch into applied events
under the one policy every reader shares:

- an event an operator discarded is skipped;
- an event that cannot be decoded, that disagrees with its subject, or whose
  apply fails is parked in the dead-letter stream with the reason, and its
  subject (aggregate) is blocked;
- later events of a blocked subject are parked behind it, so order per
  aggregate holds, while every other subject flows on.

A blocked subject resumes when its parked events apply again (`tenantctl dlq
redrive`) or when the event that blocked it is discarded (`tenantctl dlq
discard`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from tenantplane.contracts.errors import DecodeError
from tenantplane.contracts.subjects import matches
from tenantplane.services.runtime.consumers import RawMessage, follow, nothing_to_replay, to_raw
from tenantplane.services.runtime.deadletters import DeadLetters
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.replaying import Replay

T = TypeVar("T")

_REMEMBERED_SUBJECTS = 65_536  # whether each wanted, per follower


class Follower:
    """Follows the events matching `filters` from a position: raw, in order, in batches."""

    def __init__(self, log: EventLog, filters: Sequence[str]) -> None:
        self.log = log
        self.stream = log.subjects.stream_for(filters[0])
        self.filters = list(filters)
        # One covering filter and a check here is far cheaper than a multi-filter
        # consumer on the server (see Subjects.covering).
        self.wanted: tuple[str, ...] = tuple(filters) if len(filters) > 1 else ()
        self._wanted_subjects: dict[str, bool] = {}
        self.caught_up = False
        self.pending = 0
        self._inbox: deque[RawMessage] = deque()
        self._arrived = asyncio.Event()
        self._enough = 1  # messages in the inbox that wake a waiting reader
        self._sub: JetStreamContext.PushSubscription | None = None
        self._replay = Replay()

    async def start(self, after: int = 0) -> None:
        """Subscribe to everything after sequence `after`, then live."""
        filters = [self.log.subjects.covering(self.filters)] if self.wanted else self.filters
        self._sub = await follow(self.log.js, self.log.subjects, filters, self._on_msg, after + 1)
        # Caught up only when a message says nothing is pending, or nothing came at all.
        if await nothing_to_replay(self._sub):
            self.caught_up = True
        else:
            self._replay.start()

    async def _on_msg(self, msg: Msg) -> None:
        raw = to_raw(msg, headers=False)
        self._inbox.append(raw)
        if len(self._inbox) >= self._enough or raw.num_pending == 0:
            self._arrived.set()

    def wants(self, subject: str) -> bool:
        """Whether `subject` is one this follower's reader asked for."""
        if not self.wanted:
            return True
        known = self._wanted_subjects.get(subject)
        if known is None:  # subjects repeat per tenant: each is matched once
            if len(self._wanted_subjects) >= _REMEMBERED_SUBJECTS:
                self._wanted_subjects.clear()
            known = any(matches(f, subject) for f in self.wanted)
            self._wanted_subjects[subject] = known
        return known

    def take(self, limit: int = 1000) -> list[RawMessage]:
        """Up to `limit` messages that arrived, oldest first."""
        inbox = self._inbox
        batch = list(inbox)  # in one copy, not message by message
        inbox.clear()
        if len(batch) > limit:
            inbox.extend(batch[limit:])
            del batch[limit:]
        if batch:
            self.pending = batch[-1].num_pending + len(self._inbox)
            self.caught_up = self.caught_up or self.pending == 0
            if self.caught_up:
                self._replay.end()
        return batch

    async def wait(self, timeout: float, enough: int = 1) -> bool:
        """Wait until `enough` messages arrived, or the last one pending did (True), or
        `timeout` passes (True if any arrived).

        A reader replaying asks for full batches: reading on while a batch fills costs
        nothing extra, and each batch's commit then carries more events.
        """
        if len(self._inbox) >= enough or (self._inbox and self._inbox[-1].num_pending == 0):
            return True
        self._enough = enough
        self._arrived.clear()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        finally:
            self._enough = 1
        return bool(self._inbox)

    def wake(self) -> None:
        """End a `wait` now (it returns whether any messages arrived)."""
        self._arrived.set()

    async def alive(self) -> bool:
        """Whether the server still has this follower's consumer."""
        if self._sub is None:
            return False
        try:
            await self._sub.consumer_info()
        except NotFoundError:
            return False
        return True

    async def close(self) -> None:
        """Unsubscribe; undelivered messages are dropped (a reader starts from its position)."""
        self._replay.end()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        self._inbox.clear()


@dataclass
class Sifted(Generic[T]):
    """What a gate made of a batch."""

    applied: list[T] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)  # the sequence of each `applied`
    # Subjects blocked by this batch -> the sequence of the event that blocked each.
    block: dict[str, int] = field(default_factory=dict)
    parked: int = 0
    skipped: int = 0


class Gate:
    """The bad-event policy of one reader (see the module docstring)."""

    def __init__(self, reader: str, log: EventLog, stream: str, blocked: Mapping[str, int]) -> None:
        self.reader, self.log, self.stream = reader, log, stream
        self.dead_letters = DeadLetters(log.js, log.subjects)
        self.blocked = dict(blocked)

    async def sift(
        self,
        batch: Sequence[RawMessage],
        apply: Callable[[StoredEvent], T],
        wants: Callable[[str], bool] | None = None,
    ) -> Sifted[T]:
        """Apply the readable events of `batch` in order; park and block the rest.

        `wants` says which subjects are the reader's (None: all of them).
        """
        sifted: Sifted[T] = Sifted()
        blocked, discarded, stream = self.blocked, self.log.discards.places, self.stream
        for raw in batch:
            if wants is not None and not wants(raw.subject):
                continue  # outside the reader's filters, delivered by a covering one
            behind = blocked.get(raw.subject)
            if behind is not None:
                await self._park(raw, f"waits behind parked event {behind}", behind)
                sifted.parked += 1
                continue
            if (stream, raw.seq) in discarded:
                sifted.skipped += 1
                continue
            try:
                # Not `attempt`: no coroutine and no wrapper per event on every replay's path.
                result = self._apply(raw, apply)
            except _Refused as refused:
                reason = await self._unless_discarded(raw, str(refused))
                if reason is None:
                    sifted.skipped += 1
                else:
                    await self._park(raw, reason)
                    blocked[raw.subject] = sifted.block[raw.subject] = raw.seq
                    sifted.parked += 1
                continue
            sifted.applied.append(result)
            sifted.seqs.append(raw.seq)
        return sifted

    async def attempt(
        self, raw: RawMessage, apply: Callable[[StoredEvent], T]
    ) -> Applied[T] | str | None:
        """Apply one event: `Applied`, None when it was discarded, or why it must be parked."""
        if (self.stream, raw.seq) in self.log.discards:
            return None
        try:
            return Applied(self._apply(raw, apply))
        except _Refused as refused:
            return await self._unless_discarded(raw, str(refused))

    def _apply(self, raw: RawMessage, apply: Callable[[StoredEvent], T]) -> T:
        """Decode and apply one event; `_Refused` says why it must be parked."""
        try:
            stored = self.log.decode(raw)
        except DecodeError as e:
            raise _Refused(f"{type(e).__name__}: {e}") from e
        try:
            return apply(stored)
        except Exception as e:
            raise _Refused(f"apply failed: {type(e).__name__}: {e}") from e

    async def _unless_discarded(self, raw: RawMessage, reason: str) -> str | None:
        """`reason`, or None when the event was discarded since the discards were read."""
        return None if await self.log.discards.contains(self.stream, raw.seq) else reason

    async def _park(self, raw: RawMessage, reason: str, behind: int | None = None) -> None:
        await self.dead_letters.park(self.reader, raw, reason, behind)

    async def discarded_blocks(self) -> list[str]:
        """Blocked subjects whose blocking event has since been discarded."""
        if not self.blocked:
            return []
        await self.log.discards.refresh(self.stream)
        return [s for s, seq in self.blocked.items() if (self.stream, seq) in self.log.discards]

    async def resume(self, subject: str, apply: Callable[[StoredEvent], T]) -> list[T]:
        """Apply a blocked subject's events again from the one that blocked it, and unblock
        it; for readers that keep their state in memory. Its dead letters are removed.

        Raises:
            AggregateBlocked: another event of it cannot be read (it stays blocked there).
        """
        first = self.blocked[subject]
        results: list[T] = []
        async for stored in self.log.read_subject(subject, start_seq=first):
            results.append(apply(stored))
        del self.blocked[subject]
        async for letter in self.dead_letters.list(self.reader):
            if letter.subject == subject:
                await self.dead_letters.remove(letter)
        return results


class _Refused(Exception):
    """An event that cannot be applied; its message is the reason it is parked with."""


class Applied(NamedTuple, Generic[T]):
    """An event that applied, with what its apply returned (a named tuple: one is made
    per event of every replay)."""

    result: T


class Intake:
    """Follower and gate of a reader that keeps its state in memory (the scheduler, the
    cron firer): it replays from the start each run, folds events with `apply`, and
    resumes a blocked subject once its blocking event is discarded."""

    # How often blocked subjects are checked against new discards.
    BLOCKS_CHECK_S = 2.0

    def __init__(
        self, reader: str, log: EventLog, filters: Sequence[str], apply: Callable[[StoredEvent], T]
    ) -> None:
        self.follower = Follower(log, filters)
        self.gate = Gate(reader, log, self.follower.stream, {})
        self.log, self.apply = log, apply
        self._batch: list[RawMessage] = []
        self._blocks_checked = 0.0

    @property
    def caught_up(self) -> bool:
        """Whether everything that existed at the start has been folded."""
        return self.follower.caught_up and not self._batch

    async def start(self) -> None:
        """Follow the log from its start."""
        await self.log.discards.refresh(self.follower.stream)
        await self.follower.start()

    async def wait(self, timeout: float) -> None:
        """Wait until events arrive, or `timeout` passes."""
        await self.follower.wait(timeout)

    async def fold(self, limit: int = 10_000) -> None:
        """Fold up to `limit` of the events that arrived; a batch is let go only once it is
        sifted, so a step retried after NATS failed loses nothing (folding is idempotent
        by sequence)."""
        self._batch = self._batch or self.follower.take(limit)
        if self._batch:
            await self.gate.sift(self._batch, self.apply)
            self._batch = []
        now = asyncio.get_running_loop().time()
        if self.gate.blocked and now - self._blocks_checked > self.BLOCKS_CHECK_S:
            self._blocks_checked = now
            for subject in await self.gate.discarded_blocks():
                await self.gate.resume(subject, self.apply)

    async def close(self) -> None:
        """Stop following."""
        await self.follower.close()
