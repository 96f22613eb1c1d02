"""Recovery: attempts whose worker or whose queue message was lost.

An attempt whose lease ran out (its worker was killed, lost its network, or
hangs: see `leases`) is failed `worker_lost` as its worker would have failed
it, retried while attempts remain. Every `audit_s`, and at once after an
enqueue failed, each scheduled attempt whose message is lost (see
`Dispatcher.lost`) is queued again. Both append expecting the job's last
sequence, so a worker that did end or start the attempt meanwhile wins.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog

from tenantplane.contracts.envelope import Event
from tenantplane.contracts.jobs import JobCancelled
from tenantplane.services.jobs.aggregate import Job, JobStatus, RetryPolicy
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.metrics import ATTEMPTS_REDISPATCHED, LEASES_EXPIRED
from tenantplane.services.scheduler.board import Board
from tenantplane.services.scheduler.dispatch import Dispatcher
from tenantplane.services.scheduler.leases import Leases

log = structlog.get_logger(__name__)
WORKER_LOST = "worker_lost"
# Appends an event of a job if nobody changed the job since (None if somebody did).
Append = Callable[[Job, Event], Awaitable[StoredEvent | None]]


class Recovery:
    """Ends attempts whose worker is lost and queues again those whose message is."""

    def __init__(
        self,
        board: Board,
        leases: Leases,
        dispatcher: Dispatcher,
        retry: RetryPolicy,
        append: Append,
        reload: Callable[[Job], Awaitable[None]],
        audit_s: float,
    ) -> None:
        self.board, self.leases, self.dispatcher, self.retry = board, leases, dispatcher, retry
        self._append, self._reload, self.audit_s = append, reload, audit_s
        self._audit_at = 0.0

    def reset(self) -> None:
        """Audit the queues at the next step."""
        self._audit_at = 0.0

    async def step(self) -> None:
        """End attempts whose lease ran out; audit the queues when due."""
        for job_id in self.leases.expired():
            job = self.board.jobs.get(job_id)
            if job is not None and job.status is JobStatus.RUNNING:
                await self._worker_lost(job)
        if self.dispatcher.unsure or time.monotonic() >= self._audit_at:
            await self.redispatch_lost()

    async def _worker_lost(self, job: Job) -> None:
        """Fail an attempt whose lease ran out as its worker would have (retry or
        dead-letter); if the worker did end it meanwhile, its event wins."""
        if job.cancel_requested:
            ended = await self._append(job, JobCancelled(job_id=job.job_id, attempt=job.attempt))
        else:
            failed, dead = self.retry.failed(job, WORKER_LOST)
            ended = await self._append(job, failed)
            if ended is not None and dead is not None:
                await self._append(job.updated(version=ended.seq), dead)
        if ended is not None:
            LEASES_EXPIRED.labels(job.pool).inc()
            log.warning(
                "job.worker_lost", tenant_id=job.tenant_id, job_id=job.job_id,
                attempt=job.attempt, pool=job.pool, retried=job.job_id in self.board.jobs,
            )  # fmt: skip

    async def redispatch_lost(self) -> None:
        """Queue again each scheduled attempt whose message is lost."""
        for job in await self.dispatcher.lost(self.board.scheduled()):
            await self._reload(job)  # a worker may have started (and acked) it since
            if self.board.jobs.get(job.job_id) != job:
                continue
            await self.dispatcher.enqueue([job])
            ATTEMPTS_REDISPATCHED.labels(job.pool).inc()
            log.warning(
                "job.redispatched", tenant_id=job.tenant_id, job_id=job.job_id,
                attempt=job.attempt, pool=job.pool,
            )  # fmt: skip
        self._audit_at = time.monotonic() + self.audit_s
