"""The write side shared by every service: load an aggregate, decide, append.

A service subclasses `AggregateWrites` with how its aggregates are keyed and
bounded, how events fold into state, and what a command means. This base owns
the rest, identically for every aggregate:

- commands of one aggregate run one at a time in a process (a lock per key),
  so a process never conflicts with itself;
- states are cached and used optimistically: the append carries the cached
  version as the expected sequence over the aggregate's subjects, a write by
  another replica makes it fail, and the command is decided again on fresh
  state after a short random pause;
- an event of the aggregate that cannot be read blocks it: every command
  answers `AggregateBlocked` until an operator discards the event;
- effects outside the log (`settle`) follow the append, never precede it;
- what a command asks of other aggregates (`follow_up`) runs after it under its
  aggregate's lock, whether it appended or not, so re-sending a command finishes
  what a crash left undone;
- every event records its command's idempotency key (`causation_id`); the last
  keys are remembered per aggregate, so a repeated command returns its first
  result long after JetStream's duplicate window.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from tenantplane.contracts.commands import Command
from tenantplane.contracts.envelope import Envelope, Event
from tenantplane.contracts.ids import derived_event_id
from tenantplane.services.runtime.commands import Outcome
from tenantplane.services.runtime.errors import ConcurrencyConflict
from tenantplane.services.runtime.eventlog import Appended, EventLog, Expected, StoredEvent

S = TypeVar("S")
C = TypeVar("C", bound=Command)

MAX_ATTEMPTS = 30
REMEMBERED_COMMANDS = 256


@dataclass(frozen=True)
class Tracked(Generic[S]):
    """An aggregate's state with its version (last sequence) and recent commands."""

    state: S
    version: int = 0
    # Idempotency key -> what the command appended, for the last REMEMBERED_COMMANDS.
    commands: dict[str, Appended] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """What a command appends: one event, in the scope (tenant or platform) it concerns."""

    data: Event
    scope: str


class AggregateWrites(ABC, Generic[S, C]):
    """Executes commands against aggregates of one kind; one instance per process."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._tracked: dict[str, Tracked[S]] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @abstractmethod
    def key_of(self, command: C) -> str:
        """Which aggregate a command concerns."""

    @abstractmethod
    def boundary(self, key: str) -> str:
        """The subject filter of an aggregate's events (its consistency boundary)."""

    @abstractmethod
    def initial(self, key: str) -> S:
        """The state of an aggregate with no events."""

    @abstractmethod
    def evolve(self, state: S, stored: StoredEvent) -> S:
        """The state after one event."""

    @abstractmethod
    async def change_for(self, state: S, command: C) -> Change | None:
        """What `command` appends in `state`; None when it would change nothing.

        Raises the named error of a refused command.
        """

    async def handle(self, command: C) -> Outcome:
        """Apply a command: append its event once, or say why not."""
        key = self.key_of(command)
        async with self._locks.setdefault(key, asyncio.Lock()):
            outcome = await self._handle(key, command)
            return await self.follow_up(self._tracked[key].state, command, outcome)

    async def _handle(self, key: str, command: C) -> Outcome:
        tracked = self._tracked.get(key) or await self.refresh(key)
        for attempt in range(MAX_ATTEMPTS):
            replay = tracked.commands.get(command.idempotency_key)
            if replay is not None:
                # A retry finishes what a crash after the append may have left undone.
                await self.settle(tracked.state, command)
                return Outcome((replay,), replayed=True)
            try:
                change = await self.change_for(tracked.state, command)
            except ConcurrencyConflict:
                # The command's own expectation (`if_version`) failed; it is the answer
                # only if the state decided on was the newest.
                fresh = await self.refresh(key)
                if fresh.version == tracked.version:
                    raise
                tracked = fresh
                continue
            if change is None:
                return Outcome(())
            try:
                return await self._append(key, tracked, command, change)
            except ConcurrencyConflict:
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
                tracked = await self.refresh(key)
        raise ConcurrencyConflict(self.boundary(key), tracked.version)

    async def settle(self, state: S, command: C) -> None:
        """Act on what `command` appended, once its event is in the log (default: nothing).

        For effects outside the log that must not happen unless the event did, such
        as destroying a key. Runs again when the command is retried, so it must be
        idempotent.
        """

    async def follow_up(self, state: S, command: C, outcome: Outcome) -> Outcome:
        """Carry what `command` means for other aggregates into their own writes, under
        this aggregate's lock, once its own event (if any) is in the log; returns the
        outcome to answer (default: `outcome`, nothing else to do).

        Runs after every accepted command, appended, unchanged or replayed, so each
        run must converge: it reads `state` and brings the others in line with it.
        """
        return outcome

    async def _append(self, key: str, tracked: Tracked[S], command: C, change: Change) -> Outcome:
        idempotency_key = command.idempotency_key
        envelope = Envelope.wrap(
            change.data,
            tenant_id=change.scope,
            actor=command.actor,
            reason=command.reason,
            # Scoped to the aggregate: the same key used on another aggregate (another
            # tenant, say) is another command, not a duplicate.
            event_id=derived_event_id(f"{self.boundary(key)}/{idempotency_key}", 0),
            correlation_id=command.correlation_id or idempotency_key,
            causation_id=idempotency_key,
        )
        appended = await self.log.append(
            envelope, Expected(tracked.version, over=self.boundary(key))
        )
        self._tracked[key] = settled = self._track(
            tracked, StoredEvent(appended.seq, appended.subject, envelope)
        )
        await self.settle(settled.state, command)
        return Outcome((appended,))

    async def refresh(self, key: str) -> Tracked[S]:
        """Bring an aggregate's cached state up to the head of the log.

        Raises:
            AggregateBlocked: an event of the aggregate cannot be read, and no operator
                discarded it; nothing is decided on a state that may be wrong.
        """
        tracked = self._tracked.get(key) or Tracked(self.initial(key))
        async for raw, stored in self.log.tail(self.boundary(key), tracked.version + 1):
            if stored is None:  # discarded: it only moves the version
                tracked = replace(tracked, version=raw.seq)
            else:
                tracked = self._track(tracked, stored)
        self._tracked[key] = tracked
        return tracked

    def _track(self, tracked: Tracked[S], stored: StoredEvent) -> Tracked[S]:
        envelope = stored.envelope
        if envelope.causation_id is not None:
            # Only ever touched under the aggregate's lock, so updated in place.
            recent = tracked.commands
            recent[envelope.causation_id] = Appended(
                stored.subject, stored.seq, False, envelope.event_id, envelope.type
            )
            if len(recent) > REMEMBERED_COMMANDS:
                del recent[next(iter(recent))]
        state = self.evolve(tracked.state, stored)
        return replace(tracked, state=state, version=stored.seq)
