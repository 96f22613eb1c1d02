"""The scheduler's board: every unfinished job, indexed by what the loop asks of it.

A job is in exactly one place on the board, by its state: waiting for
admission, delayed until its `not_before`, waiting in its pool's fair queue, in
flight (queued in the broker or running), or, when a cancel request found it
waiting, in line to be cancelled. `apply` moves a job as its events arrive; the
loop only reads and takes.

An attempt in flight that its worker reports ended (`release`) stops counting
against its pool and tenant at once; the job keeps its place until its end is
read from the log, which may be behind a flood of requests.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from tenantplane.contracts.jobs import JobCancelRequested, JobRequested
from tenantplane.services.jobs.aggregate import Job, JobStatus, evolve
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.scheduler.fairness import FairQueue

IN_FLIGHT = (JobStatus.SCHEDULED, JobStatus.RUNNING)


class Board:
    """Unfinished jobs by place: admission, delayed, waiting per pool, in flight."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every job."""
        self.jobs: dict[str, Job] = {}
        self.queues: defaultdict[str, FairQueue] = defaultdict(FairQueue)
        self.inflight: defaultdict[str, set[str]] = defaultdict(set)
        self.active: Counter[str] = Counter()  # jobs in flight per tenant
        self._waiting: set[str] = set()
        self._delayed: list[tuple[float, str]] = []
        self._admit: deque[str] = deque()
        self._cancel: deque[str] = deque()
        self._ended: dict[str, int] = {}  # job id -> its released attempt

    def apply(self, stored: StoredEvent) -> Job | None:
        """Fold one job event in (idempotent by sequence); the job after it, or None when
        the event changed nothing here."""
        data = stored.envelope.data
        job_id = getattr(data, "job_id", "")
        old = self.jobs.get(job_id)
        if old is not None and stored.seq <= old.version:
            return None
        if old is None and not isinstance(data, JobRequested):
            return None  # an event of a job that finished before this replay's window
        new = evolve(old, stored)  # keeps the pool chosen at admission
        self._unplace(old)
        if job_id in self._ended and not self._released(new):
            del self._ended[job_id]  # the log has caught up with the release
        if new.finished:
            self.jobs.pop(job_id, None)
            return new
        self.jobs[job_id] = new
        if isinstance(data, JobCancelRequested) and new.status is JobStatus.REQUESTED:
            self._cancel.append(job_id)
        self.place(new)
        return new

    def place(self, job: Job) -> None:
        """Put `job` where its state says (after admission, or back after a failed step)."""
        self.jobs[job.job_id] = job
        if job.status in IN_FLIGHT:
            if self._released(job):
                return
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
                self._waiting.add(job.job_id)

    def _unplace(self, job: Job | None) -> None:
        if job is None:
            return
        if job.status in IN_FLIGHT:
            if self._released(job):
                return
            self.inflight[job.pool].discard(job.job_id)
            self.active[job.tenant_id] -= 1
        elif job.job_id in self._waiting:
            self._waiting.discard(job.job_id)
            self.queues[job.pool].remove(job.tenant_id, job.job_id)

    def release(self, pool: str, job_id: str, attempt: int) -> bool:
        """A worker of `pool` ended `attempt` of `job_id`: its slot is free now. False
        when the board knows no such attempt in flight (the log said so already)."""
        job = self.jobs.get(job_id)
        if job is None or (job.pool, job.attempt) != (pool, attempt):
            return False
        if job.status not in IN_FLIGHT or self._released(job):
            return False
        self._unplace(job)
        self._ended[job_id] = attempt
        return True

    def _released(self, job: Job) -> bool:
        return job.status in IN_FLIGHT and self._ended.get(job.job_id) == job.attempt

    def admit(self, job: Job, pool: str) -> None:
        """`job`, taken from `to_admit`, goes to `pool`."""
        self.place(job.updated(pool=pool))

    def admission_tenants(self) -> list[str]:
        """The tenants of the jobs waiting for admission."""
        jobs = (self.jobs.get(job_id) for job_id in self._admit)
        return list({job.tenant_id: None for job in jobs if job is not None})

    def to_admit(self) -> Iterator[Job]:
        """Jobs waiting for admission, oldest first; each is taken off the line only
        once the loop asks for the next (a failed admission leaves it first)."""
        while self._admit:
            job = self.jobs.get(self._admit[0])
            if job is not None and not job.pool and job.status is JobStatus.REQUESTED:
                yield job
            self._admit.popleft()

    def to_cancel(self) -> Iterator[Job]:
        """Waiting jobs whose cancel was asked for."""
        while self._cancel:
            job = self.jobs.get(self._cancel.popleft())
            if job is not None and job.status is JobStatus.REQUESTED:
                yield job

    def release_due(self, now: float) -> None:
        """Delayed jobs whose time came join their pool's queue."""
        while self._delayed and self._delayed[0][0] <= now:
            _, job_id = heapq.heappop(self._delayed)
            job = self.jobs.get(job_id)
            waiting = job is not None and job.status is JobStatus.REQUESTED
            if job is not None and waiting and job_id not in self._waiting:
                self.place(job.updated(not_before=None))

    def take(
        self, pool: str, can_start: Callable[[str], bool], weight: Callable[[str], float]
    ) -> Job | None:
        """The next job to start in `pool`, fairly, among tenants that `can_start`."""
        queue = self.queues.get(pool)
        picked = queue.pop(lambda tenant, _: can_start(tenant), weight) if queue else None
        if picked is None:
            return None
        self._waiting.discard(picked[1])
        return self.jobs[picked[1]]

    def scheduled(self) -> list[Job]:
        """Attempts queued in the broker and not started yet."""
        return [
            job
            for job_ids in self.inflight.values()
            for job_id in job_ids
            if (job := self.jobs[job_id]).status is JobStatus.SCHEDULED
        ]

    def waiting_pools(self) -> list[str]:
        """Pools with jobs waiting."""
        return [pool for pool, queue in self.queues.items() if queue.depth()]

    def waiting(self, pool: str) -> dict[str, int]:
        """Jobs waiting in `pool`, per tenant."""
        return self.queues[pool].depths() if pool in self.queues else {}

    def waiting_tenants(self) -> set[str]:
        """Tenants with jobs waiting in any pool."""
        return {t for queue in self.queues.values() for t in queue.depths()}

    def in_flight(self, pool: str) -> int:
        """Jobs of `pool` queued in the broker or running."""
        return len(self.inflight[pool]) if pool in self.inflight else 0

    def busy_pools(self) -> set[str]:
        """Pools with jobs waiting or in flight."""
        return {*self.waiting_pools(), *(p for p, jobs in self.inflight.items() if jobs)}
