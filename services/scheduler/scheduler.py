"""The scheduler: admits requested jobs and feeds each pool's queue fairly.

State is rebuilt by replaying the jobs stream at start, then kept current from
the same subscription. Dispatch appends `JobScheduled` with the job's expected
sequence, so of several scheduler replicas exactly one queues each attempt.
A pool never holds more jobs in flight (queued or running) than its capacity:
the queue only ever contains what the pool can start soon, and the choice of
the next job is made late, fairly, across tenants.

Jobs survive their worker and their queue: an attempt whose worker stopped
renewing its lease is failed `worker_lost` (and retried while attempts remain),
and an attempt whose queue message was lost is queued again.
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tenantplane.contracts.envelope import Event
from tenantplane.contracts.jobs import (
    JobCancelled,
    JobCancelRequested,
    JobFailed,
    JobRequested,
    JobScheduled,
)
from tenantplane.contracts.tenants import TenantStatus
from tenantplane.services.config.sdk import AsyncConfigClient, TenantConfig
from tenantplane.services.jobs.aggregate import Job, JobStatus, RetryPolicy, evolve
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.errors import (
    ConcurrencyConflict,
    TenantNotFound,
    TenantplaneError,
)
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.follower import Intake
from tenantplane.services.runtime.metrics import ATTEMPTS_REDISPATCHED, LEASES_EXPIRED, Sample
from tenantplane.services.runtime.supervisor import LoopHandle
from tenantplane.services.scheduler.dispatch import Dispatcher
from tenantplane.services.scheduler.fairness import FairQueue
from tenantplane.services.scheduler.leases import Leases

log = structlog.get_logger(__name__)
DEFAULT_CONCURRENCY = 4
DEFAULT_RATE_PER_MINUTE = 600
WORKER_LOST = "worker_lost"


@dataclass
class _Bucket:
    """A token bucket refilled at `rate` per second, holding at most `burst`."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def has(self, now: float) -> bool:
        return min(self.burst, self.tokens + (now - self.at) * self.rate) >= 1.0


class Scheduler:
    """Admission and fair dispatch of every tenant's jobs."""

    def __init__(
        self,
        nc: NATS,
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
    ) -> None:
        self.nc, self.log, self.config, self.dispatcher = nc, log, config, dispatcher
        self.writer = JobLog(log, actor="scheduler")
        self.pools, self.default_pool, self.tick_s = pools, default_pool, tick_s
        # Capacity of a pool that is not in `pools` (a tenant's dedicated pool); 0: refused.
        self.dedicated_capacity = dedicated_capacity
        self.caught_up = False
        # Renewed by workers' heartbeats, heard by a `LeaseListener` on these leases.
        self.leases = Leases(lease_s)
        self.audit_s, self.retry = audit_s, retry or RetryPolicy()
        self._reset()

    def _reset(self) -> None:
        """Forget everything: state is rebuilt from the jobs stream by `run`."""
        self.jobs: dict[str, Job] = {}
        self.queues: dict[str, FairQueue] = defaultdict(FairQueue)
        self.inflight: dict[str, set[str]] = defaultdict(set)
        self.active: Counter[str] = Counter()
        self.caught_up = False
        self._queued: set[str] = set()
        self._delayed: list[tuple[float, str]] = []
        self._admit: deque[str] = deque()
        self._cancel: deque[str] = deque()
        self._buckets: dict[str, _Bucket] = {}
        self.leases.clear()
        self._audit_at = 0.0

    # Intake ----------------------------------------------------------------
    async def run(self, loop: LoopHandle) -> None:
        """Schedule until the loop's stop signal; state is rebuilt from the log each run.

        A step that meets Redis or NATS away is retried (the loop reports it as
        degraded meanwhile); nothing taken from an index is lost by a failed step.
        """
        self._reset()
        self._intake = Intake("scheduler", self.log, [self.log.subjects.all_jobs()], self.apply)
        await self._intake.start()
        status = await self.nc.subscribe(
            self.log.subjects.control("scheduler", "status"), queue="scheduler", cb=self._status
        )
        try:
            while not loop.stopping:
                await self._intake.wait(self.tick_s)
                await loop.retrying(self._step, "scheduling")
        finally:
            await self._intake.close()
            with contextlib.suppress(Exception):
                await status.unsubscribe()

    async def _step(self) -> None:
        await self._intake.fold()
        if self._intake.caught_up and not self.caught_up:
            await self._caught_up()
        if self.caught_up:
            await self._admit_requested()
            await self._cancel_queued()
            self._release_due()
            await self._dispatch()
            await self._recover()

    async def _caught_up(self) -> None:
        """Replay done: queue again the attempts queued before a restart whose message
        is gone (a worker starts each attempt at most once, so a copy is harmless)."""
        await self._redispatch_lost()
        self.caught_up = True
        log.info("scheduler.caught_up", jobs=len(self.jobs))

    def apply(self, stored: StoredEvent) -> None:
        """Fold one job event into the scheduler's view (idempotent by sequence)."""
        data = stored.envelope.data
        job_id = getattr(data, "job_id", "")
        old = self.jobs.get(job_id)
        if old is not None and stored.seq <= old.version:
            return
        if old is None and not isinstance(data, JobRequested):
            return  # an event of a job that finished before this scheduler's replay window
        new = evolve(old, stored)  # keeps the pool chosen at admission
        self.leases.track(new)
        self._unindex(old)
        if new.finished:
            self.jobs.pop(job_id, None)
            return
        self.jobs[job_id] = new
        if isinstance(data, JobCancelRequested) and new.status is JobStatus.REQUESTED:
            self._cancel.append(job_id)
        self._index(new)

    def _index(self, job: Job) -> None:
        if job.status in (JobStatus.SCHEDULED, JobStatus.RUNNING):
            self.inflight[job.pool].add(job.job_id)
            self.active[job.tenant_id] += 1
        elif job.status is JobStatus.REQUESTED and not job.cancel_requested:
            if not job.pool:
                self._admit.append(job.job_id)
            elif job.not_before is not None and job.not_before > datetime.now(UTC):
                heapq.heappush(self._delayed, (job.not_before.timestamp(), job.job_id))
            else:
                self.queues[job.pool].push(
                    job.tenant_id, job.job_id, job.priority, job.requested_seq
                )
                self._queued.add(job.job_id)

    def _unindex(self, job: Job | None) -> None:
        if job is None:
            return
        if job.status in (JobStatus.SCHEDULED, JobStatus.RUNNING):
            self.inflight[job.pool].discard(job.job_id)
            self.active[job.tenant_id] -= 1
        elif job.job_id in self._queued:
            self._queued.discard(job.job_id)
            self.queues[job.pool].remove(job.tenant_id, job.job_id)

    # Admission ---------------------------------------------------------------
    async def _admit_requested(self) -> None:
        decided: dict[str, tuple[str | None, str]] = {}  # per tenant, read once per step
        while self._admit:
            job = self.jobs.get(self._admit[0])
            if job is None or job.pool or job.status is not JobStatus.REQUESTED:
                self._admit.popleft()
                continue
            if job.tenant_id not in decided:
                # May fail (Redis away): the job stays first in line for the next step.
                decided[job.tenant_id] = await self._admission(job)
            self._admit.popleft()
            refusal, pool = decided[job.tenant_id]
            if refusal is not None:
                await self._append(job, JobFailed(job_id=job.job_id, attempt=0, error=refusal))
                continue
            admitted = replace(job, pool=pool)
            self.jobs[job.job_id] = admitted
            self._index(admitted)

    async def _admission(self, job: Job) -> tuple[str | None, str]:
        """Whether `job`'s tenant may submit jobs now, and to which pool."""
        try:
            # Admission is a decision: read the tenant now, not from a cache that may lag.
            config = await self.config.get_config(job.tenant_id, allow_suspended=True, fresh=True)
        except TenantNotFound:
            return f"tenant {job.tenant_id} does not exist", ""
        if config.status != TenantStatus.ACTIVE.value:
            return f"tenant {job.tenant_id} is {config.status}", ""
        pool = str(config.get("jobs.pool") or self.default_pool)
        if self._capacity(pool) == 0:
            return f"tenant {job.tenant_id}'s pool {pool!r} does not exist", ""
        return None, pool

    async def _cancel_queued(self) -> None:
        while self._cancel:
            job = self.jobs.get(self._cancel.popleft())
            if job is not None and job.status is JobStatus.REQUESTED:
                await self._append(job, JobCancelled(job_id=job.job_id, attempt=job.attempt))

    # Dispatch ----------------------------------------------------------------
    def _release_due(self) -> None:
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, job_id = heapq.heappop(self._delayed)
            job = self.jobs.get(job_id)
            if job is not None and job.status is JobStatus.REQUESTED and job_id not in self._queued:
                self._index(replace(job, not_before=None))

    async def _dispatch(self) -> None:
        await self._refresh_configs()
        for pool, queue in list(self.queues.items()):
            while len(self.inflight[pool]) < self._capacity(pool):
                picked = queue.pop(self._can_start, self._weight)
                if picked is None:
                    break
                self._queued.discard(picked[1])
                job = self.jobs[picked[1]]
                try:
                    await self._schedule(job)
                except Exception:
                    # Not scheduled (NATS away): back in line, in its place, for the next step.
                    if self.jobs.get(job.job_id) == job:
                        self._index(job)
                    raise

    async def _schedule(self, job: Job) -> None:
        attempt = job.attempt + 1
        data = JobScheduled(job_id=job.job_id, pool=job.pool, attempt=attempt)
        if await self._append(job, data) is None:
            return
        self._bucket(job.tenant_id).take(time.monotonic())
        await self.dispatcher.enqueue(self.jobs[job.job_id])

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

    # Recovery ----------------------------------------------------------------
    async def _recover(self) -> None:
        """End attempts whose worker is lost; every `audit_s` (or after an enqueue
        failed), queue again attempts whose message was lost."""
        for job_id in self.leases.expired():
            job = self.jobs.get(job_id)
            if job is not None and job.status is JobStatus.RUNNING:
                await self._worker_lost(job)
        if self.dispatcher.unsure or time.monotonic() >= self._audit_at:
            await self._redispatch_lost()

    async def _worker_lost(self, job: Job) -> None:
        """Fail an attempt whose lease ran out as its worker would have (retry or
        dead-letter); if the worker did end it meanwhile, its event wins."""
        if job.cancel_requested:
            ended = await self._append(job, JobCancelled(job_id=job.job_id, attempt=job.attempt))
        else:
            failed, dead = self.retry.failed(job, WORKER_LOST)
            ended = await self._append(job, failed)
            if ended is not None and dead is not None:
                await self._append(replace(job, version=ended.seq), dead)
        if ended is not None:
            LEASES_EXPIRED.labels(job.pool).inc()
            log.warning(
                "job.worker_lost", tenant_id=job.tenant_id, job_id=job.job_id,
                attempt=job.attempt, pool=job.pool, retried=self.jobs.get(job.job_id) is not None,
            )  # fmt: skip

    async def _redispatch_lost(self) -> None:
        """Queue again each scheduled attempt whose message is gone from its queue."""
        scheduled = [
            job
            for job_ids in self.inflight.values()
            for job_id in job_ids
            if (job := self.jobs[job_id]).status is JobStatus.SCHEDULED
        ]
        for job in await self.dispatcher.lost(scheduled):
            await self._reload(job)  # a worker may have started (and acked) it since
            if self.jobs.get(job.job_id) != job:
                continue
            await self.dispatcher.enqueue(job)
            ATTEMPTS_REDISPATCHED.labels(job.pool).inc()
            log.warning(
                "job.redispatched", tenant_id=job.tenant_id, job_id=job.job_id,
                attempt=job.attempt, pool=job.pool,
            )  # fmt: skip
        self._audit_at = time.monotonic() + self.audit_s

    async def _refresh_configs(self) -> None:
        """Read again the config of waiting tenants whose cached copy went stale."""
        waiting = {t for queue in self.queues.values() for t in queue.depths()}
        for tenant_id in waiting:
            if self.config.cached(tenant_id) is None:
                with contextlib.suppress(TenantplaneError):
                    await self.config.get_config(tenant_id, allow_suspended=True)

    def _can_start(self, tenant_id: str, job_id: str) -> bool:
        config = self.config.cached(tenant_id)
        if config is not None and config.status != TenantStatus.ACTIVE.value:
            return False
        if self.active[tenant_id] >= _limit(config, "jobs.max_concurrency", DEFAULT_CONCURRENCY):
            return False
        return self._bucket(tenant_id, config).has(time.monotonic())

    def _weight(self, tenant_id: str) -> float:
        return float(_limit(self.config.cached(tenant_id), "jobs.weight", 1))

    def _bucket(self, tenant_id: str, config: TenantConfig | None = None) -> _Bucket:
        rate = _limit(
            config or self.config.cached(tenant_id), "jobs.rate_per_minute", DEFAULT_RATE_PER_MINUTE
        )
        bucket = self._buckets.get(tenant_id)
        if bucket is None or bucket.burst != max(1.0, float(rate)):
            burst = max(1.0, float(rate))
            bucket = self._buckets[tenant_id] = _Bucket(rate / 60, burst, burst, time.monotonic())
        return bucket

    async def readiness(self) -> str | None:
        """Ready once the jobs stream has been replayed (a readiness check)."""
        return None if self.caught_up else "replaying the jobs stream"

    def samples(self) -> Iterator[Sample]:
        """Per pool capacity, in-flight and waiting jobs, and waiting jobs per tenant."""
        for pool in self._known_pools():
            waiting = self._waiting(pool)
            yield Sample("tenantplane_pool_capacity_jobs", (pool,), self._capacity(pool))
            yield Sample("tenantplane_pool_in_flight_jobs", (pool,), len(self.inflight[pool]))
            yield Sample("tenantplane_pool_waiting_jobs", (pool,), sum(waiting.values()))
            for tenant, depth in waiting.items():
                yield Sample("tenantplane_tenant_waiting_jobs", (pool, tenant), depth)

    def _capacity(self, pool: str) -> int:
        return self.pools.get(pool, self.dedicated_capacity)

    def _known_pools(self) -> list[str]:
        """The installation's pools, and the dedicated pools that have jobs now."""
        used = {p for p, queue in self.queues.items() if queue.depths()}
        return sorted({*self.pools, *used, *(p for p, jobs in self.inflight.items() if jobs)})

    def _waiting(self, pool: str) -> dict[str, int]:
        return self.queues[pool].depths() if pool in self.queues else {}

    async def _status(self, msg: Msg) -> None:
        await msg.respond(orjson.dumps(await self.status()))

    async def status(self) -> list[dict[str, object]]:
        """Per pool: capacity, jobs in flight, queued in the broker, and waiting per tenant."""
        rows: list[dict[str, object]] = []
        for pool in self._known_pools():
            waiting = self._waiting(pool)
            rows.append({
                "pool": pool, "capacity": self._capacity(pool),
                "in_flight": len(self.inflight[pool]),
                "in_queue": await self.dispatcher.depth(pool),
                "waiting": sum(waiting.values()), "waiting_by_tenant": waiting,
            })  # fmt: skip
        return rows


def _limit(config: TenantConfig | None, key: str, default: int) -> int:
    if config is None:
        return default
    value = config.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default
