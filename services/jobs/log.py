"""The one place job events are written: appended under the job's event-id rule.

The scheduler (admission, dispatch, lost workers), the cron firer (submits)
and the workers (an attempt's lifecycle) all append through a `JobLog`; nobody
else writes the jobs stream. Callers outside the scheduler submit and cancel
by command (`JobClient`), which the scheduler serves with this.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg

from tenantplane.contracts.envelope import Envelope, Event
from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.contracts.jobs import JobCancelRequested, JobRequested, JobSpec
from tenantplane.services.jobs.aggregate import Job, event_id, evolve, job_id_for
from tenantplane.services.runtime.consumers import follow, to_raw
from tenantplane.services.runtime.errors import ConcurrencyConflict, InvalidTransition, JobNotFound
from tenantplane.services.runtime.eventlog import EventLog, Expected, StoredEvent


@dataclass(frozen=True)
class Submitted:
    """A submitted job; `duplicate` when its idempotency key was submitted before."""

    tenant_id: str
    job_id: str
    seq: int
    duplicate: bool


class Submits(ABC):
    """The one way to ask for a job, whether straight into the log or by command."""

    async def submit(
        self,
        tenant_id: str,
        kind: str,
        args: dict[str, Any] | None = None,
        *,
        priority: int = 5,
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
        max_attempts: int = 3,
        timeout_s: float = 300.0,
        reason: str = "",
    ) -> Submitted:
        """Ask for a job. The same idempotency key never makes a second job."""
        spec = JobSpec(
            kind=kind, args=args or {}, priority=priority, not_before=not_before,
            max_attempts=max_attempts, timeout_s=timeout_s,
        )  # fmt: skip
        return await self.submit_spec(tenant_id, spec, idempotency_key or str(uuid.uuid4()), reason)

    @abstractmethod
    async def submit_spec(
        self, tenant_id: str, spec: JobSpec, key: str, reason: str = ""
    ) -> Submitted:
        """Ask for job `spec` under idempotency key `key`."""


class JobLog(Submits):
    """Appends job events (each under its id rule) and reads jobs back from the log."""

    def __init__(self, log: EventLog, actor: str = "jobs") -> None:
        self.log = log
        self.actor = actor

    async def append(
        self,
        job: Job,
        data: Event,
        *,
        expect: bool = False,
        n: int = 0,
        reason: str = "",
        actor: str | None = None,
    ) -> StoredEvent:
        """Append one event of `job` (by `actor`, else this log's); with `expect`, only if
        `job` is still its latest state.

        Raises:
            ConcurrencyConflict: `expect` and the job changed since `job`.
        """
        attempt, actor = getattr(data, "attempt", job.attempt), actor or self.actor
        envelope = Envelope.wrap(
            data, tenant_id=job.tenant_id, actor=actor, reason=reason,
            event_id=event_id(job.job_id, attempt, data, actor, n),
        )  # fmt: skip
        appended = await self.log.append(envelope, Expected(job.version) if expect else None)
        return StoredEvent(appended.seq, appended.subject, envelope)

    async def request(
        self,
        tenant_id: str,
        spec: JobSpec,
        key: str,
        reason: str = "",
        actor: str | None = None,
        on_appended: Callable[[StoredEvent], object] | None = None,
    ) -> Submitted:
        """Append the request of job `spec` under idempotency key `key`, once; `on_appended`
        is called with the stored request when this call is the one that appended it."""
        job_id = job_id_for(validate_tenant_id(tenant_id), key)
        data = JobRequested(job_id=job_id, **dict(spec))
        envelope = Envelope.wrap(
            data, tenant_id=tenant_id, actor=actor or self.actor, reason=reason,
            event_id=event_id(job_id, 0, data), causation_id=key,
        )  # fmt: skip
        try:
            appended = await self.log.append(envelope, Expected(0))
        except ConcurrencyConflict:
            job = await self.get(tenant_id, job_id)
            return Submitted(tenant_id, job_id, job.requested_seq, duplicate=True)
        if on_appended is not None and not appended.duplicate:
            on_appended(StoredEvent(appended.seq, appended.subject, envelope))
        return Submitted(tenant_id, job_id, appended.seq, duplicate=appended.duplicate)

    async def submit_spec(
        self, tenant_id: str, spec: JobSpec, key: str, reason: str = ""
    ) -> Submitted:
        return await self.request(tenant_id, spec, key, reason)

    async def cancel(
        self, tenant_id: str, job_id: str, reason: str = "", actor: str | None = None
    ) -> Job:
        """Ask for a job to stop: before it starts it never will; while it runs, at its
        next check."""
        job = await self.get(tenant_id, job_id)
        if job.finished:
            raise InvalidTransition(f"job {job_id} is {job.status} already")
        if not job.cancel_requested:
            await self.append(job, JobCancelRequested(job_id=job_id), reason=reason, actor=actor)
        return await self.get(tenant_id, job_id)

    async def events(
        self, tenant_id: str, job_id: str, after: int = 0
    ) -> AsyncIterator[StoredEvent]:
        """A job's events after sequence `after`, oldest first."""
        subject = self.log.subjects.job(tenant_id, job_id)
        async for stored in self.log.read_subject(subject, start_seq=after + 1):
            yield stored

    async def follow(self, tenant_id: str, job_id: str) -> AsyncIterator[Job]:
        """The job now, then after each of its events, live, until it finishes.

        Raises:
            JobNotFound: no events for that job.
        """
        job = await self.get(tenant_id, job_id)
        yield job
        if job.finished:
            return
        heard: asyncio.Queue[StoredEvent] = asyncio.Queue()

        async def hear(msg: Msg) -> None:
            heard.put_nowait(self.log.decode(to_raw(msg, headers=False)))

        subject = self.log.subjects.job(tenant_id, job_id)
        sub = await follow(self.log.js, self.log.subjects, [subject], hear, job.version + 1)
        try:
            while not job.finished:
                stored = await heard.get()
                if stored.seq > job.version:
                    job = evolve(job, stored)
                    yield job
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def wait(self, tenant_id: str, job_id: str, timeout: float | None = None) -> Job:
        """The job once it has finished (succeeded, failed, dead-lettered or cancelled).

        Raises:
            JobNotFound: no events for that job.
            TimeoutError: not finished within `timeout` seconds.
        """

        async def finished() -> Job:
            async for job in self.follow(tenant_id, job_id):
                if job.finished:
                    return job
            raise AssertionError("a followed job ends finished")  # pragma: no cover

        return await asyncio.wait_for(finished(), timeout)

    async def get(self, tenant_id: str, job_id: str) -> Job:
        """A job's current state, from its events.

        Raises:
            JobNotFound: no events for that job.
        """
        job: Job | None = None
        async for stored in self.events(tenant_id, job_id):
            job = evolve(job, stored)
        if job is None:
            raise JobNotFound(
                f"no job {job_id} for tenant {tenant_id}", tenant_id=tenant_id, job_id=job_id
            )
        return job
