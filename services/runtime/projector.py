"""The projector kernel: log → read model, exactly-once in effect.

A projector streams its events with an ordered consumer starting after the
checkpoint its store holds, and commits each batch of read-model writes
together with the new checkpoint. The store's conditional commit is the only
durable position: after a crash, a restart, a lost ack or a second projector
racing it, the next run starts from what the store says and converges to the
state of a fresh replay.

It reads through the one `Follower` and `Gate` of every reader: events that
cannot be decoded or applied are parked in the dead-letter stream with the
reason, later events of the same subject (aggregate) are parked behind them,
so order per aggregate holds while every other subject goes on, and events an
operator discarded are skipped. The blocked subjects are part of the stored
position, committed with the read model.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tenantplane.contracts.registry import EventRegistry
from tenantplane.contracts.subjects import REBUILT, Subjects, matches
from tenantplane.services.runtime.consumers import RawMessage, read_raw
from tenantplane.services.runtime.deadletters import DeadLetter
from tenantplane.services.runtime.errors import (
    AggregateBlocked,
    InvalidTransition,
    ProjectionTimeout,
    TenantplaneError,
)
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.follower import Applied, Follower, Gate, Sifted
from tenantplane.services.runtime.leadership import TTL_S, Lease
from tenantplane.services.runtime.metrics import APPLY_LATENCY, Sample
from tenantplane.services.runtime.ops import Check
from tenantplane.services.runtime.partitions import Partition
from tenantplane.services.runtime.stores.base import CLEARED, Position, ProjectionStore
from tenantplane.services.runtime.supervisor import LoopHandle
from tenantplane.services.runtime.transient import describe_error, is_transient

OpT = TypeVar("OpT")
OpT_co = TypeVar("OpT_co", covariant=True)
log = structlog.get_logger(__name__)


class Projection(Protocol[OpT_co]):
    """What a read model needs to say: its name, its events, and how each changes it.

    `apply` is pure: it returns the store operations for one event and does no
    I/O, so a failing event can be set aside without touching the others.
    """

    @property
    def name(self) -> str:
        """The projection's name (used in keys, subjects and metrics)."""
        ...

    def filters(self) -> Sequence[str]:
        """Subject filters of the events this projection reads."""
        ...

    def apply(self, event: StoredEvent) -> Sequence[OpT_co]:
        """The read-model operations that apply `event`."""
        ...


class _Restart(Exception):
    """The subscription must be made again from the store's checkpoint."""


class _Reload(Exception):
    """The store's position moved under this projector (a rebuild was switched in):
    it follows again from there, still answering its control requests."""


@dataclass
class ProjectorStats:
    """Counters a projector keeps for metrics and status."""

    applied: int = 0
    parked: int = 0
    batches: int = 0
    restarts: int = 0
    pending: int = 0
    last_commit_at: float = 0.0
    caught_up: bool = False
    losses: int = 0
    healing: str = ""
    # Another replica holds the projection's lease: this one waits to take over.
    standby: bool = False


@dataclass(frozen=True)
class RedriveResult:
    """What a re-drive of dead letters did."""

    applied: int
    still_parked: int
    subjects_unblocked: tuple[str, ...]
    # Subject -> why it is still blocked.
    still_blocked: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RebuildDone:
    """What a rebuild on request did."""

    projection: str
    tenant: str | None
    events: int  # replayed
    checkpoint: int
    how: str


CONTROL_ACTIONS = ("redrive", "rebuild", "status")
# How often a projector renews its lease, and a standby tries to take it.
LEASE_RENEW_S = TTL_S / 3


class Projector(Generic[OpT]):
    """Runs one projection against one store until stopped."""

    def __init__(
        self,
        projection: Projection[OpT],
        store: ProjectionStore[OpT],
        nc: NATS,
        *,
        subjects: Subjects,
        registry: EventRegistry,
        max_batch: int = 1000,
        idle_check_s: float = 1.0,
        store_check_s: float = 2.0,
        notify: bool = True,
        heal: Callable[[], Awaitable[object]] | None = None,
        control: bool = True,
        lease: Lease | None = None,
        partition: Partition | None = None,
        until: int | None = None,
    ) -> None:
        self.projection = projection
        self.store = store
        self.nc = nc
        self.log = EventLog(nc.jetstream(), subjects, registry)
        self.subjects = subjects
        self.max_batch = max_batch
        self.idle_check_s = idle_check_s
        # How often an idle projector re-reads its stored position, to find a lost read
        # model (Redis flushed, or restored from an older snapshot) within seconds.
        self.store_check_s = store_check_s
        self.notify = notify
        # Rebuilds the read model beside the live one and swaps it in; without it a lost
        # read model is replayed in place.
        self.heal = heal
        # Whether it answers control requests (a rebuild's shadow projector must not).
        self.control = control
        # Among replicas, only the holder of `lease` projects (see leadership.py).
        self.lease = lease
        self._lease_lost = False
        # The store's position moved under this projector (a rebuild was switched in):
        # it reloads its position and gate before anything else.
        self._reload = False
        # A replay of one tenant partition's events (the others' only move the position),
        # up to sequence `until` and no further: one part of a partitioned rebuild.
        self.partition, self.until = partition, until
        self._store_checked = 0.0
        self.stats = ProjectorStats()
        self.position = Position(checkpoint=0)
        self.gate = Gate(self.name, self.log, self._stream, {})
        self._stopping = asyncio.Event()
        self._follower: Follower | None = None
        self._lock = asyncio.Lock()
        self._progress = asyncio.Condition()

    @property
    def name(self) -> str:
        """The projection's name."""
        return self.projection.name

    @property
    def _stream(self) -> str:
        return self.subjects.stream_for(self.projection.filters()[0])

    async def run(self, loop: LoopHandle | None = None) -> None:
        """Project until `stop()` (or the loop's stop signal).

        Reconnects and resubscribes by itself after NATS or the store fail, and
        reports that as trouble on `loop`; anything else is raised to the
        supervisor, which restarts the projector from its stored checkpoint.
        """
        loop = loop or LoopHandle(f"projector.{self.name}", asyncio.Event())
        watcher = asyncio.create_task(self._stop_with(loop))
        try:
            await self._supervise(loop)
        finally:
            watcher.cancel()
            if self.lease is not None and self._stopping.is_set():
                await self.lease.release()  # a standby takes over at once

    @contextlib.asynccontextmanager
    async def _answering(self) -> AsyncIterator[None]:
        """Answer control requests while this replica projects."""
        actions = CONTROL_ACTIONS if self.control else ()
        subjects = [self.subjects.control(self.name, a) for a in actions]
        subjects += [self.subjects.control_all("status")] if self.control else []
        queue = f"projector-{self.name}"  # one replica answers for the projection
        controls = [await self.nc.subscribe(s, queue=queue, cb=self._on_control) for s in subjects]
        try:
            yield
        finally:
            for control in controls:
                with contextlib.suppress(Exception):
                    await control.unsubscribe()

    async def _stop_with(self, loop: LoopHandle) -> None:
        await loop.stop.wait()
        await self.stop()

    async def _on_control(self, msg: Msg) -> None:
        """Answer `redrive`, `rebuild` or `status` (the last token of the subject)."""
        action = msg.subject.rsplit(".", 1)[-1]
        try:
            tenant = orjson.loads(msg.data or b"{}").get("tenant")
            if action == "redrive":
                body: dict[str, Any] = dataclasses.asdict(await self.redrive(tenant))
            elif action == "rebuild":
                body = dataclasses.asdict(await self.rebuild(tenant))
            else:
                body = await self.status()
            body = {"ok": True, **body}
        except Exception as e:
            # The error's code too, so the operator's command fails by its name.
            code = e.code.value if isinstance(e, TenantplaneError) else "internal"
            error = f"{type(e).__name__}: {e}"
            body = {"ok": False, "projection": self.name, "error": error, "code": code}
        await msg.respond(orjson.dumps(body))

    async def _supervise(self, loop: LoopHandle) -> None:
        backoff = 0.05
        while not self._stopping.is_set():
            try:
                await self._run_once(loop)
                backoff = 0.05
            except _Restart as e:
                self._restarted(str(e))
            except Exception as e:
                if not is_transient(e):
                    raise
                self._restarted(describe_error(e))
                loop.degraded(f"retrying after {describe_error(e)}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, 2.0)

    def _restarted(self, reason: str) -> None:
        self.stats.restarts += 1
        log.warning("projector.restart", projection=self.name, reason=reason)

    async def stop(self) -> None:
        """Finish the batch in hand, then return from `run()`."""
        self._stopping.set()
        if self._follower is not None:
            self._follower.wake()  # not waiting out `idle_check_s` for events

    async def _lead(self, loop: LoopHandle) -> bool:
        """Wait until this replica holds the lease (standing by, ready, meanwhile);
        False when stopped first."""
        assert self.lease is not None
        while not await self.lease.acquire():
            if not self.stats.standby:
                log.info(
                    "projector.standby", projection=self.name, holder=await self.lease.current()
                )
            self.stats.standby = True
            loop.recovered()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), LEASE_RENEW_S)
            if self._stopping.is_set():
                return False
        if self.stats.standby:
            log.info("projector.leading", projection=self.name)
        self.stats.standby, self._lease_lost = False, False
        return True

    async def _keep_lease(self) -> None:
        """Renew the lease while projecting; on losing it, stop projecting."""
        assert self.lease is not None
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            try:
                kept = await self.lease.renew()
            except Exception as e:
                kept = False
                log.warning("projector.lease_unrenewed", projection=self.name, error=repr(e))
            if not kept:
                self._lease_lost = True
                if self._follower is not None:
                    self._follower.wake()
                return

    async def _run_once(self, loop: LoopHandle) -> None:
        if self.lease is None:
            async with self._answering():
                await self._project(loop)
            return
        if not await self._lead(loop):
            return
        keeping = asyncio.create_task(self._keep_lease())
        try:
            async with self._answering():
                await self._project(loop)
        finally:
            keeping.cancel()

    async def _project(self, loop: LoopHandle) -> None:
        while True:
            try:
                await self._follow(loop)
                return
            except _Reload as e:
                log.info("projector.reload", projection=self.name, reason=str(e))

    async def _follow(self, loop: LoopHandle) -> None:
        await self._moved(await self.store.load())
        self.stats.healing = ""
        await self.log.discards.refresh(self._stream)
        self.gate = Gate(self.name, self.log, self._stream, self.position.blocked)
        self.stats.caught_up = False
        reconnects = self.nc.stats["reconnects"]
        follower = self._follower = Follower(self.log, self.projection.filters())
        await follower.start(self.position.checkpoint)
        self.stats.caught_up = follower.caught_up
        loop.recovered()
        try:
            while not self._stopping.is_set():
                if self._lease_lost:
                    raise _Restart("another replica holds the lease")
                if self._reload:
                    self._reload = False
                    raise _Reload("the read model was switched under this projector")
                # Replaying, a reader waits for full batches (see `Follower.wait`).
                enough = 1 if follower.caught_up else self.max_batch
                if not await follower.wait(self.idle_check_s, enough):
                    await self._idle(follower, reconnects)
                    continue
                async with self._lock:
                    await self._apply_batch(follower, follower.take(self.max_batch))
                loop.recovered()
        finally:
            await follower.close()

    async def _idle(self, follower: Follower, reconnects: int) -> None:
        if self._stopping.is_set():
            return
        if self.nc.stats["reconnects"] != reconnects:
            raise _Restart("NATS reconnected")
        if self.nc.is_connected and not await follower.alive():
            raise _Restart("consumer lost")
        if await self.gate.discarded_blocks():
            try:
                await self.redrive()
            except InvalidTransition as e:  # the position moved under it
                raise _Reload(str(e)) from e
        now = time.monotonic()
        if now - self._store_checked >= self.store_check_s:
            self._store_checked = now
            stored = await self.store.load()
            if stored.checkpoint < self.position.checkpoint:
                await self._lost(stored.checkpoint)
            if self._moved_under(stored):
                raise _Reload("the stored position moved (a rebuild was switched in)")

    def _moved_under(self, stored: Position) -> bool:
        """Whether the store's position is not the one this projector holds (another
        process changed it: a rebuild switched in)."""
        held = self.position
        return (stored.checkpoint, stored.blocked) != (held.checkpoint, held.blocked)

    def _reload_soon(self) -> None:
        """Make the running loop reload its position and gate before its next batch."""
        self._reload = True
        if self._follower is not None:
            self._follower.wake()

    async def _lost(self, stored: int) -> None:
        """The store holds less than this projector applied: its read model was lost.

        Readers keep what they cached (they never take an older version); the
        read model is rebuilt beside whatever is left and swapped in at once.
        """
        applied = self.position.checkpoint
        log.error("projection.lost", projection=self.name, stored=stored, applied=applied)
        self.stats.losses += 1
        self.stats.caught_up = False
        self.stats.pending += applied - stored
        self.stats.healing = f"read model lost (stored checkpoint {stored}, applied {applied})"
        if self.heal is not None:
            await self.heal()
        raise _Restart(f"read model lost at {applied}; rebuilt")

    async def _apply_batch(self, follower: Follower, batch: list[RawMessage]) -> None:
        start, until = self.position.checkpoint, self.until
        if batch and start < batch[0].seq and (until is None or batch[-1].seq <= until):
            fresh = batch  # the common case: sequences rise, so every one of them is new
        else:
            fresh = [r for r in batch if start < r.seq and (until is None or r.seq <= until)]
        if not fresh:
            self._reached(follower, batch)
            return
        sifted = await self.gate.sift(fresh, self.projection.apply, self._wants(follower))
        ops = list(itertools.chain.from_iterable(sifted.applied))
        events = list(zip(sifted.seqs, map(len, sifted.applied), strict=True))
        new = fresh[-1].seq
        result = await self.store.commit(
            start, new, ops, block=sifted.block, parked=sifted.parked, events=events
        )
        if result.switching:
            raise _Restart("a rebuilt read model is being switched in")
        if not result.ok and result.checkpoint < start:
            await self._lost(result.checkpoint)
        if not result.ok:
            raise _Restart(f"checkpoint is {result.checkpoint}, expected {start}")
        await self._committed(new, fresh, sifted, follower)
        self._reached(follower, batch)

    def _wants(self, follower: Follower) -> Callable[[str], bool] | None:
        """Which subjects of a batch to apply: the reader's, of its partition if it has one
        (None: every subject delivered)."""
        partition = self.partition
        if partition is None:
            return follower.wants if follower.wanted else None

        def wants(subject: str) -> bool:
            tenant = self.subjects.tenant_of(subject)
            return tenant is not None and partition.includes(tenant) and follower.wants(subject)

        return wants

    def _reached(self, follower: Follower, batch: list[RawMessage]) -> None:
        """A replay up to `until` is done once the log is read past it, or to its end."""
        if self.until is not None and (
            (batch and batch[-1].seq >= self.until) or (follower.caught_up and not follower.pending)
        ):
            self.stats.caught_up = True

    async def _committed(
        self, new: int, fresh: list[RawMessage], sifted: Sifted[Sequence[OpT]], follower: Follower
    ) -> None:
        if self.stats.caught_up:
            # Live events only: during a replay the age of an event is not a latency.
            latency = APPLY_LATENCY.labels(self.name)
            now = time.time()
            for raw in fresh:
                latency.observe(max(0.0, now - raw.stored_at))
        self.stats.applied += len(sifted.applied)
        self.stats.parked += sifted.parked
        self.stats.batches += 1
        self.stats.last_commit_at = time.time()
        self.stats.pending = follower.pending
        self.stats.caught_up = follower.caught_up and follower.pending == 0
        blocked = {**self.position.blocked, **sifted.block}
        await self._moved(Position(new, blocked, self.position.parked + sifted.parked))
        if self.notify:
            await self._notify(fresh, follower)

    async def _notify(self, fresh: list[RawMessage], follower: Follower) -> None:
        """Tell readers which tenants' read models moved, and to which sequence."""
        touched: dict[str, int] = {}
        for raw in fresh:
            tenant = self.subjects.tenant_of(raw.subject)
            if tenant is not None and follower.wants(raw.subject):
                touched[tenant] = raw.seq
        for tenant, seq in touched.items():
            await self.nc.publish(self.subjects.changes(self.name, tenant), str(seq).encode())

    async def _moved(self, position: Position) -> None:
        async with self._progress:
            self.position = position
            self._progress.notify_all()

    def readiness(self, max_lag: int) -> Check:
        """Ready once replayed, and while no more than `max_lag` events behind."""

        async def check() -> str | None:
            if self.stats.standby:
                return None  # another replica projects; this one is ready to take over
            if self.stats.healing:
                return f"{self.stats.healing}; rebuilding"
            if self.stats.caught_up or (self.stats.batches and self.stats.pending <= max_lag):
                return None
            if not self.stats.batches:
                return f"replaying the log from {self.position.checkpoint}"
            return f"{self.stats.pending} events behind (more than {max_lag})"

        return check

    def samples(self) -> Iterator[Sample]:
        """This projector's figures for the metrics endpoint."""
        name = (self.name,)
        yield Sample("tenantplane_projector_events", (self.name, "applied"), self.stats.applied)
        yield Sample("tenantplane_projector_events", (self.name, "parked"), self.stats.parked)
        yield Sample("tenantplane_dead_letters", name, self.stats.parked)
        yield Sample("tenantplane_projection_lag_events", name, self.stats.pending)
        yield Sample("tenantplane_projection_checkpoint", name, self.position.checkpoint)
        yield Sample(
            "tenantplane_projection_last_apply_timestamp_seconds", name, self.stats.last_commit_at
        )
        yield Sample("tenantplane_projection_blocked_subjects", name, len(self.position.blocked))
        yield Sample("tenantplane_projector_restarts", name, self.stats.restarts)
        yield Sample("tenantplane_projection_losses", name, self.stats.losses)
        yield Sample("tenantplane_projector_standby", name, int(self.stats.standby))

    async def wait_for(self, seq: int, timeout: float = 5.0) -> None:
        """Return once this projector has applied `seq`.

        Raises:
            ProjectionTimeout: not reached within `timeout` seconds.
        """

        async def reached() -> None:
            async with self._progress:
                await self._progress.wait_for(lambda: self.position.checkpoint >= seq)

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            raise ProjectionTimeout(
                f"{self.name} at {self.position.checkpoint}, not {seq}, after {timeout}s"
            ) from None

    async def redrive(self, tenant: str | None = None) -> RedriveResult:
        """Apply this projection's dead letters again, in order, and unblock their subjects.

        Discarded events are dropped. A subject is unblocked only when every other
        event parked on it now applies; otherwise it stays blocked and its dead
        letters stay where they are, with their reasons.

        Raises:
            InvalidTransition: the store's position is not the one this projector
                holds (a rebuild was switched in); it reloads, and a re-drive run
                again then works on the new position.
        """
        async with self._lock:
            if self._moved_under(await self.store.load()):
                self._reload_soon()
                raise InvalidTransition(
                    f"{self.name}: its read model was switched (a rebuild) since it last "
                    "read its position; it reloads it now: run the re-drive again"
                )
            await self.log.discards.refresh(self._stream)
            by_subject: dict[str, list[DeadLetter]] = {}
            async for letter in self.gate.dead_letters.list(self.name):
                if tenant is None or self.subjects.tenant_of(letter.subject) == tenant:
                    by_subject.setdefault(letter.subject, []).append(letter)
            applied, still, unblocked, reasons = 0, 0, [], {}
            for subject, letters in by_subject.items():
                done = await self._redrive_subject(subject, sorted(letters, key=lambda d: d.seq))
                if isinstance(done, str):
                    still += len(letters)
                    reasons[subject] = done
                else:
                    applied += done
                    unblocked.append(subject)
            return RedriveResult(applied, still, tuple(unblocked), reasons)

    async def _redrive_subject(self, subject: str, letters: list[DeadLetter]) -> int | str:
        """Re-apply one subject's parked events; the count applied, or why it stays blocked."""
        first = self.position.blocked.get(subject)
        # Letters older than the block were applied by an earlier re-drive that
        # stopped before deleting them.
        live = [d for d in letters if first is not None and d.seq >= first]
        ops: list[OpT] = []
        events: list[tuple[int, int]] = []  # re-driven: negative sequences (see `commit`)
        for letter in live:
            outcome = await self.gate.attempt(
                self.gate.dead_letters.as_raw(letter), self.projection.apply
            )
            if isinstance(outcome, str):
                return f"event {letter.seq}: {outcome}"
            if isinstance(outcome, Applied):
                ops.extend(outcome.result)
                events.append((-letter.seq, len(outcome.result)))
        applied = len(events)
        if live:
            cp = self.position.checkpoint
            result = await self.store.commit(cp, cp, ops, unblock=[subject], events=events)
            if not result.ok:
                raise _Restart("checkpoint moved during re-drive")
            blocked = {k: v for k, v in self.position.blocked.items() if k != subject}
            self.gate.blocked.pop(subject, None)
            await self._moved(Position(cp, blocked, self.position.parked))
        for letter in letters:
            await self.gate.dead_letters.remove(letter)
        return applied

    async def status(self) -> dict[str, Any]:
        """Where the projection stands: its store, checkpoint, lag, parked and blocked."""
        position = await self.store.load()
        lag = (
            await self.log.pending(self.projection.filters(), position.checkpoint)
            if (await self._has_stream())
            else 0
        )
        return {
            "projection": self.name,
            "store": getattr(self.store, "kind", type(self.store).__name__),
            "checkpoint": position.checkpoint,
            "lag": lag,
            "parked": position.parked,
            "blocked_subjects": len(position.blocked),
        }

    async def rebuild(self, tenant: str | None = None) -> RebuildDone:
        """Replace the read model (or one tenant's part of it) with what the log says.

        A whole rebuild with `heal` builds beside the live read model and swaps
        it in. Otherwise the store's `clearing` operations and the replayed
        events up to the checkpoint are committed in one step, under the commit
        lock, so live batches wait and readers see the old state or the new one.
        Events parked behind a blocked subject stay out, as in the live read model.

        Raises:
            AggregateBlocked: an event no longer applies (nothing changed).
            InvalidTransition: another replica moved the checkpoint (nothing changed).
        """
        if tenant is None and self.heal is not None:
            healed = await self.heal()
            self._reload_soon()
            checkpoint = (await self.store.load()).checkpoint
            # A `RedisRebuild` says how far it replayed and how many keys it switched.
            events, keys = getattr(healed, "events", checkpoint), getattr(healed, "keys", None)
            how = "built beside, swapped in" + (f" ({keys} keys)" if keys is not None else "")
            return RebuildDone(self.name, None, events, checkpoint, how)
        async with self._lock:
            checkpoint = self.position.checkpoint
            ops = list(await self.store.clearing(tenant))
            events = await self._replay(tenant, checkpoint, ops)
            # All of it rewrites what it touches as of the checkpoint (see `commit`)
            cleared = [(CLEARED, len(ops))]
            result = await self.store.commit(checkpoint, checkpoint, ops, events=cleared)
            if not result.ok:
                raise InvalidTransition(
                    f"{self.name} moved from {checkpoint} to {result.checkpoint} during the "
                    "rebuild (another replica?); nothing changed, try again"
                )
        if self.notify:
            changed = self.subjects.changes(self.name, tenant or REBUILT)
            await self.nc.publish(changed, str(checkpoint).encode())
        return RebuildDone(self.name, tenant, events, checkpoint, "replayed in place")

    async def _replay(self, tenant: str | None, upto: int, ops: list[OpT]) -> int:
        """Add the operations of the events up to `upto` (of one tenant) to `ops`."""
        filters = list(self.projection.filters())
        if tenant is not None:
            narrowed = (self.subjects.tenant_filter(f, tenant) for f in filters)
            filters = [f for f in narrowed if f is not None]
        if not upto or not filters or not await self._has_stream():
            return 0
        events = 0
        raws = cast(AsyncGenerator[RawMessage], read_raw(self.log.js, self._stream, filters))
        async with contextlib.aclosing(raws):
            async for raw in raws:
                if raw.seq > upto:
                    break
                if not any(matches(f, raw.subject) for f in filters) or self._parked(raw):
                    continue
                outcome = await self.gate.attempt(raw, self.projection.apply)
                if isinstance(outcome, str):
                    raise AggregateBlocked(raw.subject, raw.seq, outcome)
                if isinstance(outcome, Applied):
                    ops.extend(outcome.result)
                    events += 1
        return events

    def _parked(self, raw: RawMessage) -> bool:
        """Whether the live projector parked `raw` (its subject blocked at or before it)."""
        behind = self.position.blocked.get(raw.subject)
        return behind is not None and raw.seq >= behind

    async def _has_stream(self) -> bool:
        return await self.log.stream_exists(self._stream)
