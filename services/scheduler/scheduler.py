"""The scheduler: admits requested jobs and feeds each pool's queue fairly.

State is rebuilt by replaying the jobs stream at start, then kept current from
the same subscription. Dispatch appends `JobScheduled` with the job's expected
sequence, so of several scheduler replicas exactly one queues each attempt.
A pool never holds more jobs in flight (queued or running) than its capacity:
the queue only ever contains what the pool can start soon, and the choice of
the next job is made late, fairly, across tenants.

Jobs survive their worker and their queue (see `recovery`): an attempt whose
worker stopped renewing its lease is failed `worker_lost` (and retried while
attempts remain), and an attempt whose queue message was lost is queued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Callable

import structlog

from tenantplane.contracts.envelope import Event
from tenantplane.contracts.jobs import JobCancelled, JobFailed, JobScheduled, RunningAttempt
from tenantplane.services.config.sdk import AsyncConfigClient, TenantConfig
from tenantplane.services.jobs.aggregate import Job, RetryPolicy
from tenantplane.services.jobs.limits import JobLimits
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.errors import (
    ConcurrencyConflict,
    TenantNotFound,
    TenantplaneError,
)
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.follower import Intake
from tenantplane.services.runtime.supervisor import LoopHandle
from tenantplane.services.scheduler.admission import PoolCapacity, admit, may_start
from tenantplane.services.scheduler.board import Board
from tenantplane.services.scheduler.dispatch import Dispatcher
from tenantplane.services.scheduler.kinds import PoolKinds
from tenantplane.services.scheduler.leases import Leases
from tenantplane.services.scheduler.ratelimit import RateLimits
from tenantplane.services.scheduler.recovery import Recovery

log = structlog.get_logger(__name__)


class Scheduler:
    """The loop that wires the parts: the board (intake), admission, rate limits, the
    pools' fair queues, dispatch and recovery."""

    REPLAY_BATCH = 10_000  # events folded per step while replaying at start
    SLICE = 500  # events folded per step once live

    def __init__(
        self,
        log: EventLog,
        config: AsyncConfigClient,
        dispatcher: Dispatcher,
        pools: dict[str, int],
        default_pool: str,
        *,
        dedicated_capacity: int = 0,
        tick_s: float = 0.1,
        lease_s: float = 15.0,
        audit_s: float = 5.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.config, self.dispatcher = log, config, dispatcher
        self.writer = JobLog(log, actor="scheduler")
        self.default_pool, self.tick_s = default_pool, tick_s
        self.capacity = PoolCapacity(pools, dedicated_capacity)
        self.board = Board()
        self.rates = RateLimits(clock)
        # Renewed by workers' heartbeats, heard by a `LeaseListener` on these leases.
        self.leases = Leases(lease_s)
        # The kinds each pool's workers run, heard from the same heartbeats.
        self.kinds = PoolKinds(lease_s)
        self._clock = clock
        self.recovery = Recovery(
            self.board, self.leases, dispatcher, retry or RetryPolicy(), self._append,
            self._reload, audit_s,
        )  # fmt: skip
        self._reset()

    def _reset(self) -> None:
        """Forget everything: state is rebuilt from the jobs stream by `run`."""
        self.board.clear()
        self.rates.clear()
        self.leases.clear()
        self.recovery.reset()
        self.caught_up = False
        self._intake: Intake | None = None

    # Intake ----------------------------------------------------------------
    async def run(self, loop: LoopHandle) -> None:
        """Schedule until the loop's stop signal; state is rebuilt from the log each run.

        A step that meets Redis or NATS away is retried (the loop reports it as
        degraded meanwhile); nothing taken from the board is lost by a failed step.
        """
        self._reset()
        self._intake = intake = Intake(
            "scheduler", self.log, [self.log.subjects.all_jobs()], self.apply
        )
        await intake.start()
        try:
            while not loop.stopping:
                await intake.wait(self.tick_s)
                await loop.retrying(functools.partial(self._step, intake), "scheduling")
        finally:
            self._intake = None
            await intake.close()

    async def _step(self, intake: Intake) -> None:
        # Once live, a burst is folded in slices, and what is on the board is served
        # before and after each: a job submitted by command, or slots freed by workers,
        # wait neither for the whole burst nor for the next slice.
        if self.caught_up:
            await self._serve_board()
        await intake.fold(self.SLICE if self.caught_up else self.REPLAY_BATCH)
        if intake.caught_up and not self.caught_up:
            await self._caught_up()
        if self.caught_up:
            await self._serve_board()
            await self.recovery.step()

    async def _serve_board(self) -> None:
        """Admit, cancel, release what is due, and dispatch."""
        await self._admit_requested()
        await self._cancel_waiting()
        self.board.release_due(time.time())
        await self._dispatch()

    async def _caught_up(self) -> None:
        """Replay done: queue again the attempts queued before a restart whose message
        is gone (a worker starts each attempt at most once, so a copy is harmless)."""
        await self.recovery.redispatch_lost()
        self.caught_up = True
        log.info("scheduler.caught_up", jobs=len(self.board.jobs))

    def apply(self, stored: StoredEvent) -> None:
        """Fold one job event into the board and the leases."""
        job = self.board.apply(stored)
        if job is not None:
            self.leases.track(job)

    def requested(self, stored: StoredEvent) -> None:
        """A job request this process has just appended: on the board now, and the loop
        woken, rather than once the intake has read all that was appended before it.

        Safe out of the log's order: a request is its job's first event, so no event
        of the job can come before it, and the intake skips it later by sequence.
        """
        self.apply(stored)
        self._wake()

    def ended(self, pool: str, attempts: tuple[RunningAttempt, ...]) -> None:
        """A worker of `pool` says it ended `attempts`: their slots are free now, not once
        the intake reads their ends from the log (which may lag behind a flood); the
        loop is woken when jobs wait for them."""
        released = [self.board.release(pool, a.job_id, a.attempt) for a in attempts]
        if any(released) and pool in self.board.waiting_pools():
            self._wake()

    def _wake(self) -> None:
        if self._intake is not None:
            self._intake.follower.wake()

    # Admission ---------------------------------------------------------------
    async def _admit_requested(self) -> None:
        # Each waiting tenant's config, read once per step, all at once. May fail (Redis
        # away): then nothing is taken off the line, and the next step tries again.
        tenants = self.board.admission_tenants()
        if not tenants:
            return
        fresh = await asyncio.gather(*(self._fresh_config(t) for t in tenants))
        configs: dict[str, TenantConfig | None] = dict(zip(tenants, fresh, strict=True))
        served = functools.cache(self.kinds.served)  # per pool, once per step
        for job in self.board.to_admit():
            if job.tenant_id not in configs:  # its request came while the configs were read
                configs[job.tenant_id] = await self._fresh_config(job.tenant_id)
            admission = admit(
                job.tenant_id, job.kind, configs[job.tenant_id], self.default_pool,
                self.capacity.of, served,
            )  # fmt: skip
            if admission.refusal is not None:
                refused = JobFailed(job_id=job.job_id, attempt=0, error=admission.refusal)
                await self._append(job, refused)
            else:
                self.board.admit(job, admission.pool)

    async def _fresh_config(self, tenant_id: str) -> TenantConfig | None:
        try:
            # Admission is a decision: read the tenant now, not from a cache that may lag.
            return await self.config.get_config(tenant_id, allow_suspended=True, fresh=True)
        except TenantNotFound:
            return None

    async def _cancel_waiting(self) -> None:
        for job in self.board.to_cancel():
            await self._append(job, JobCancelled(job_id=job.job_id, attempt=job.attempt))

    # Dispatch ----------------------------------------------------------------
    async def _dispatch(self) -> None:
        """Pick, fairly, what each pool has room for; schedule the picks together: their
        appends concurrently (each against its own job's sequence), then one enqueue of
        all that were scheduled."""
        await self._refresh_configs()
        for pool in self.board.waiting_pools():
            picks = self._pick(pool)
            if picks:
                await self._schedule(picks)

    def _pick(self, pool: str) -> list[Job]:
        """The jobs `pool` has room for now, taken fairly from its queue."""
        picks: list[Job] = []
        # Counted at once: the next pick of this step sees the tenant's slot taken.
        picked: Counter[str] = Counter()
        while self.board.in_flight(pool) + len(picks) < self.capacity.of(pool):
            job = self.board.take(pool, lambda t: self._can_start(t, picked[t]), self._weight)
            if job is None:
                break
            picked[job.tenant_id] += 1
            self.rates.spend(job.tenant_id, self._limits(job.tenant_id).rate_per_minute)
            picks.append(job)
        return picks

    async def _schedule(self, picks: list[Job]) -> None:
        outcomes = await asyncio.gather(
            *(self._append(job, self._next_attempt(job)) for job in picks),
            return_exceptions=True,
        )
        scheduled, failure = [], None
        for job, outcome in zip(picks, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Not scheduled (NATS away): back in line, in its place, for the next step.
                if self.board.jobs.get(job.job_id) == job:
                    self.board.place(job)
                failure = outcome
            elif outcome is not None:
                scheduled.append(self.board.jobs[job.job_id])
        await self.dispatcher.enqueue(scheduled)
        if failure is not None:
            raise failure

    @staticmethod
    def _next_attempt(job: Job) -> JobScheduled:
        return JobScheduled(job_id=job.job_id, pool=job.pool, attempt=job.attempt + 1)

    def _can_start(self, tenant_id: str, picked: int = 0) -> bool:
        """Whether the tenant may start one more job, `picked` of this step counted."""
        config = self.config.cached(tenant_id)
        limits = JobLimits.of(config)
        if not may_start(config, limits, self.board.active[tenant_id] + picked):
            return False
        return self.rates.allows(tenant_id, limits.rate_per_minute)

    def _weight(self, tenant_id: str) -> float:
        return self._limits(tenant_id).weight

    def _limits(self, tenant_id: str) -> JobLimits:
        return JobLimits.of(self.config.cached(tenant_id))

    async def _append(self, job: Job, data: Event) -> StoredEvent | None:
        """Append an event of `job` if nobody else changed it since; apply it here."""
        try:
            stored = await self.writer.append(job, data, expect=True)
        except ConcurrencyConflict:
            await self._reload(job)
            return None
        self.apply(stored)
        return stored

    async def _reload(self, job: Job) -> None:
        async for stored in self.writer.events(job.tenant_id, job.job_id, after=job.version):
            self.apply(stored)

    async def _refresh_configs(self) -> None:
        """Read again the config of waiting tenants whose cached copy went stale."""
        for tenant_id in self.board.waiting_tenants():
            if self.config.cached(tenant_id) is None:
                with contextlib.suppress(TenantplaneError):
                    await self.config.get_config(tenant_id, allow_suspended=True)

    async def readiness(self) -> str | None:
        """Ready once the jobs stream has been replayed (a readiness check)."""
        return None if self.caught_up else "replaying the jobs stream"
