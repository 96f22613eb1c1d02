"""Starting and ending one attempt of one job, with its lifecycle as events.

Called by the pool's `TenantContext` middleware in a dramatiq worker thread,
before and after the actor; every I/O step runs on the process's asyncio loop.
An attempt starts only if `JobStarted` can be appended right after the
`JobScheduled` that queued it, so a message delivered twice (or queued again
after a scheduler restart) runs once.

The worker thread waits for the start to be appended, not for the end: once the
actor returned, the loop appends the end while the thread takes its next message
(at most `max_ending` ends wait at once; then a thread waits for one). Until its
end is appended an attempt is still renewed by heartbeats, so a worker that dies
before leaves the attempt to its lease, as it would a moment earlier: the
scheduler fails it `worker_lost` and retries it by the tenant's rule.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from dramatiq.middleware import Interrupt, TimeLimitExceeded
from pydantic import ValidationError

from tenantplane.contracts.jobs import (
    JobCancelled,
    JobFailed,
    JobProgressed,
    JobStarted,
    JobSucceeded,
    QueuedAttempt,
    RunningAttempt,
)
from tenantplane.contracts.tenants import TenantStatus
from tenantplane.services.config.sdk import AsyncConfigClient, TenantConfig
from tenantplane.services.jobs.aggregate import Job, JobStatus, RetryPolicy
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.jobs.queue import job_of
from tenantplane.services.runtime.errors import (
    ConcurrencyConflict,
    InvalidRequest,
    TenantplaneError,
    Unavailable,
)
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.metrics import JOB_DURATION, JOB_WAIT, JOBS_FINISHED
from tenantplane.services.runtime.transient import describe_error, is_transient
from tenantplane.services.worker.channel import ChannelServer
from tenantplane.services.worker.context import JobCancelledError, JobContext

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass
class Started:
    """An attempt a worker thread runs: its job, its context, and (once the actor has
    run) its result."""

    job: Job
    ctx: JobContext
    server: ChannelServer
    at: float  # `time.perf_counter()` when it started
    result: dict[str, Any] | None = None


class JobRunner:
    """Runs attempts of jobs for one worker pool."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        log: EventLog,
        config: AsyncConfigClient,
        pool: str,
        worker: str,
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        max_ending: int = 64,
    ) -> None:
        self.loop, self.log, self.config = loop, log, config
        self.jobs = JobLog(log, actor=worker)
        self.pool, self.worker = pool, worker
        self.retry = RetryPolicy(backoff_base_s, backoff_max_s)
        # Attempts started here and not yet over, by (tenant, job): what heartbeats renew.
        # Changed and read on the loop only.
        self._running: dict[tuple[str, str], int] = {}
        # Told (on the loop) of each attempt whose end is appended: the heartbeat's `ended`.
        self.on_ended: Callable[[RunningAttempt], object] = lambda attempt: None
        # Ends being appended: a slot each, taken by the worker thread.
        self._ending_slots = threading.BoundedSemaphore(max_ending)
        self._ending: set[concurrent.futures.Future[None]] = set()

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def start(self, queued: QueuedAttempt) -> Started | None:
        """Start the attempt `queued` names; None when it must not run (delivered twice,
        cancelled, its tenant suspended or gone, or Redis or NATS away: see `_prepare`).

        The thread's log lines name the tenant, job, attempt and kind until `finish`.
        """
        tenant_id, job_id, attempt = queued.tenant_id, queued.job_id, queued.attempt
        prepared = self._prepare(tenant_id, job_id, attempt, job_of(queued))
        if prepared is None:
            return None
        job, config, server = prepared
        structlog.contextvars.bind_contextvars(
            tenant_id=tenant_id, job_id=job_id, attempt=attempt, kind=job.kind
        )
        ctx = JobContext(tenant_id, job_id, attempt, config, server.channel)
        return Started(job, ctx, server, time.perf_counter())

    def finish(self, started: Started, exception: BaseException | None) -> None:
        """Record how a started attempt ended, its result or why it failed: handed to the
        loop, which appends it while the thread goes on (see the module's docstring)."""
        job = started.job
        JOB_DURATION.labels(self.pool, job.kind).observe(time.perf_counter() - started.at)
        structlog.contextvars.unbind_contextvars("tenant_id", "job_id", "attempt", "kind")
        self._ending_slots.acquire()
        try:
            ending = asyncio.run_coroutine_threadsafe(self._ended(started, exception), self.loop)
        except BaseException:
            self._ending_slots.release()
            raise
        self._ending.add(ending)
        ending.add_done_callback(self._ending.discard)

    async def drain(self) -> None:
        """Wait until every end handed to the loop is appended, or failed to be."""
        while self._ending:
            await asyncio.gather(
                *(asyncio.wrap_future(f) for f in list(self._ending)), return_exceptions=True
            )

    async def _ended(self, started: Started, exception: BaseException | None) -> None:
        job, appended = started.job, False
        try:
            outcome = await self._end(job, started.result, exception)
            appended = True
            JOBS_FINISHED.labels(self.pool, job.kind, outcome).inc()
        except Exception as e:
            # Its lease runs out: the scheduler fails it `worker_lost` and retries it.
            log.warning(
                "job.end_not_appended", tenant_id=job.tenant_id, job_id=job.job_id,
                attempt=job.attempt, error=describe_error(e),
            )  # fmt: skip
        finally:
            self._over(started, appended)
            self._ending_slots.release()

    def running(self) -> list[RunningAttempt]:
        """The attempts this worker runs now (call on the loop)."""
        return [
            RunningAttempt(tenant_id=tenant_id, job_id=job_id, attempt=attempt)
            for (tenant_id, job_id), attempt in self._running.items()
        ]

    def _prepare(
        self, tenant_id: str, job_id: str, attempt: int, scheduled: Job | None
    ) -> tuple[Job, TenantConfig, ChannelServer] | None:
        """Start the attempt, or leave it to be queued again if Redis or NATS is away.

        The message is then taken off the queue unrun, and the scheduler, finding
        the attempt still scheduled and its message gone, queues it again: better
        than failing an attempt that never ran.
        """
        try:
            return self._wait(self._start(tenant_id, job_id, attempt, scheduled))
        except Exception as e:
            if not is_transient(e):
                raise
            log.warning(
                "job.start_deferred", tenant_id=tenant_id, job_id=job_id, attempt=attempt,
                error=describe_error(e),
            )  # fmt: skip
            return None

    def _over(self, started: Started, appended: bool) -> None:
        """The attempt is over: its channel closes, its lease is no longer renewed, and
        when its end was `appended` the scheduler is told at once."""
        job = started.job
        started.server.close()
        self._running.pop((job.tenant_id, job.job_id), None)
        if appended:
            self.on_ended(
                RunningAttempt(tenant_id=job.tenant_id, job_id=job.job_id, attempt=job.attempt)
            )

    async def _end(
        self, job: Job, result: dict[str, Any] | None, exception: BaseException | None
    ) -> str:
        """Append the end of the attempt; returns the outcome for the metrics."""
        match exception:
            case None:
                try:
                    data = JobSucceeded(job_id=job.job_id, attempt=job.attempt, result=result or {})
                except ValidationError as e:
                    await self._failed(job, f"the job's result is not a JSON object: {e}")
                    return "failed"
                await self.jobs.append(job, data)
                return "succeeded"
            case JobCancelledError():
                await self.jobs.append(job, JobCancelled(job_id=job.job_id, attempt=job.attempt))
                return "cancelled"
            case TimeLimitExceeded():
                await self._failed(job, f"timed out after {job.timeout_s:g}s")
                return "timed_out"
            case Interrupt():
                await self._failed(job, "the worker stopped during the attempt")
                return "interrupted"
        log.warning("job.failed", error=f"{type(exception).__name__}: {exception}")
        await self._failed(job, f"{type(exception).__name__}: {exception}")
        return "failed"

    async def _start(
        self, tenant_id: str, job_id: str, attempt: int, scheduled: Job | None = None
    ) -> tuple[Job, TenantConfig, ChannelServer] | None:
        """Append `job.started` right after the `job.scheduled` that queued this attempt,
        and open the channel the job's context asks through.

        `scheduled` is the job as the queue message describes it; when the job has
        changed since (a cancel request, another delivery), it is read and decided
        again.
        """
        job = scheduled or await self.jobs.get(tenant_id, job_id)
        if job.status is not JobStatus.SCHEDULED or job.attempt != attempt:
            return None  # a duplicate delivery, or an attempt already over
        if job.cancel_requested:
            await self.jobs.append(job, JobCancelled(job_id=job_id, attempt=attempt))
            return None
        refusal, config = await self._tenant(tenant_id)
        if config is None or refusal:
            await self.jobs.append(job, JobFailed(job_id=job_id, attempt=attempt, error=refusal))
            return None
        started = JobStarted(job_id=job_id, attempt=attempt, worker=self.worker)
        try:
            seq = (await self.jobs.append(job, started, expect=True)).seq
        except ConcurrencyConflict:
            if scheduled is not None:
                return await self._start(tenant_id, job_id, attempt)
            return None  # another delivery started it, or it was cancelled meanwhile
        self._running[(tenant_id, job_id)] = attempt
        if attempt == 1 and job.due_at is not None:
            waited = (datetime.now(UTC) - job.due_at).total_seconds()
            JOB_WAIT.labels(self.pool).observe(max(waited, 0.0))
        server = ChannelServer(asyncio.get_running_loop(), self._serve(job))
        server.open()
        return replace(job, status=JobStatus.RUNNING, version=seq), config, server

    async def _tenant(self, tenant_id: str) -> tuple[str, TenantConfig | None]:
        try:
            # From the push-refreshed cache: a suspension or a config change reaches it
            # within milliseconds of its projection, without a Redis read per job.
            config = await self.config.get_config(tenant_id, allow_suspended=True)
        except Unavailable:
            raise  # Redis is away: not a refusal of the tenant (`_prepare` defers the attempt)
        except TenantplaneError as e:
            return e.message, None
        if config.status != TenantStatus.ACTIVE.value:
            return f"tenant {tenant_id} is {config.status}", config
        return "", config

    def _serve(self, job: Job) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        """What answers one job's requests: for its own tenant and job, nothing else."""
        progressed = iter(range(10**9))

        async def serve(request: dict[str, Any]) -> Any:
            match request.get("ask"):
                case "secrets":
                    return await self.config.secrets(job.tenant_id, job_id=job.job_id)
                case "progress":
                    data = JobProgressed(
                        job_id=job.job_id, attempt=job.attempt,
                        progress=float(request["fraction"]), message=str(request["message"]),
                    )  # fmt: skip
                    await self.jobs.append(job, data, n=next(progressed))
                    return None
                case "cancelled":
                    return (await self.jobs.get(job.tenant_id, job.job_id)).cancel_requested
            raise InvalidRequest(f"a job cannot ask {request.get('ask')!r}")

        return serve

    async def _failed(self, job: Job, error: str) -> None:
        failed, dead = self.retry.failed(job, error)
        await self.jobs.append(job, failed)
        if dead is not None:
            await self.jobs.append(job, dead)
