"""Submitting and cancelling jobs: what services (and `tenantctl job`) call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.ids import derived_event_id, validate_tenant_id
from tenantplane.contracts.jobs import JobCancelRequested, JobRequested
from tenantplane.services.runtime.errors import ConcurrencyConflict, InvalidTransition
from tenantplane.services.runtime.errors import (
    JobNotFound as JobNotFound,  # also importable from here
)
from tenantplane.services.runtime.eventlog import EventLog, Expected
from tenantplane.services.scheduler.jobs import Job, evolve

_JOB_ID_NAMESPACE = uuid.UUID("0b1f5c3e-2a44-4f4e-9f61-1c6f0d7e9a21")


@dataclass(frozen=True)
class Submitted:
    """A submitted job; `duplicate` when its idempotency key was submitted before."""

    tenant_id: str
    job_id: str
    seq: int
    duplicate: bool


def job_id_for(tenant_id: str, idempotency_key: str) -> str:
    """The id of the job a tenant's idempotency key names: the same key, the same job."""
    return str(uuid.uuid5(_JOB_ID_NAMESPACE, f"{tenant_id}/{idempotency_key}"))


class JobClient:
    """Submits, cancels and reads jobs through the event log."""

    def __init__(self, log: EventLog, actor: str = "jobs-sdk") -> None:
        self.log = log
        self.actor = actor

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
        key = idempotency_key or str(uuid.uuid4())
        job_id = job_id_for(validate_tenant_id(tenant_id), key)
        data = JobRequested(
            job_id=job_id, kind=kind, args=args or {}, priority=priority,
            not_before=not_before, max_attempts=max_attempts, timeout_s=timeout_s,
        )  # fmt: skip
        envelope = Envelope.wrap(
            data, tenant_id=tenant_id, actor=self.actor, reason=reason,
            event_id=derived_event_id(f"{tenant_id}/{key}", 0), causation_id=key,
        )  # fmt: skip
        try:
            appended = await self.log.append(envelope, Expected(0))
        except ConcurrencyConflict:
            job = await self.get(tenant_id, job_id)
            return Submitted(tenant_id, job_id, job.requested_seq, duplicate=True)
        return Submitted(tenant_id, job_id, appended.seq, duplicate=appended.duplicate)

    async def cancel(self, tenant_id: str, job_id: str, reason: str = "") -> Job:
        """Ask for a job to stop: before it starts it never will; while it runs, at its
        next check."""
        job = await self.get(tenant_id, job_id)
        if job.finished:
            raise InvalidTransition(f"job {job_id} is {job.status} already")
        if not job.cancel_requested:
            data = JobCancelRequested(job_id=job_id)
            await self.log.append(
                Envelope.wrap(data, tenant_id=tenant_id, actor=self.actor, reason=reason)
            )
        return await self.get(tenant_id, job_id)

    async def get(self, tenant_id: str, job_id: str) -> Job:
        """A job's current state, from its events.

        Raises:
            JobNotFound: no events for that job.
        """
        job: Job | None = None
        async for stored in self.log.read_subject(self.log.subjects.job(tenant_id, job_id)):
            job = evolve(job, stored)
        if job is None:
            raise JobNotFound(
                f"no job {job_id} for tenant {tenant_id}", tenant_id=tenant_id, job_id=job_id
            )
        return job
