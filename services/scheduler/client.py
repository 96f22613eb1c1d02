"""Submitting and cancelling jobs.

`JobClient` is what services and `tenantctl job` call: submit and cancel are
commands the scheduler serves (so a caller needs no right to write the log),
reads come from the log. `JobLog` is the scheduler's side of it, appending to
the log itself: what serves those commands and what the cron firer submits with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NATS

from tenantplane.contracts import EVENTS
from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.ids import derived_event_id, validate_tenant_id
from tenantplane.contracts.jobs import (
    CancelJob,
    JobCancelRequested,
    JobRequested,
    JobSpec,
    SubmitJob,
)
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.commands import CommandClient, Outcome
from tenantplane.services.runtime.errors import (
    ConcurrencyConflict,
    InvalidRequest,
    InvalidTransition,
)
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


class JobLog:
    """Submits, cancels and reads jobs straight through the event log."""

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
        spec = JobSpec(
            kind=kind, args=args or {}, priority=priority, not_before=not_before,
            max_attempts=max_attempts, timeout_s=timeout_s,
        )  # fmt: skip
        return await self.request(tenant_id, spec, idempotency_key or str(uuid.uuid4()), reason)

    async def request(
        self, tenant_id: str, spec: JobSpec, key: str, reason: str = "", actor: str | None = None
    ) -> Submitted:
        """Append the request of job `spec` under idempotency key `key`, once."""
        job_id = job_id_for(validate_tenant_id(tenant_id), key)
        data = JobRequested(job_id=job_id, **dict(spec))
        envelope = Envelope.wrap(
            data, tenant_id=tenant_id, actor=actor or self.actor, reason=reason,
            event_id=derived_event_id(f"{tenant_id}/{key}", 0), causation_id=key,
        )  # fmt: skip
        try:
            appended = await self.log.append(envelope, Expected(0))
        except ConcurrencyConflict:
            job = await self.get(tenant_id, job_id)
            return Submitted(tenant_id, job_id, job.requested_seq, duplicate=True)
        return Submitted(tenant_id, job_id, appended.seq, duplicate=appended.duplicate)

    async def cancel(
        self, tenant_id: str, job_id: str, reason: str = "", actor: str | None = None
    ) -> Job:
        """Ask for a job to stop: before it starts it never will; while it runs, at its
        next check."""
        job = await self.get(tenant_id, job_id)
        if job.finished:
            raise InvalidTransition(f"job {job_id} is {job.status} already")
        if not job.cancel_requested:
            data = JobCancelRequested(job_id=job_id)
            await self.log.append(
                Envelope.wrap(data, tenant_id=tenant_id, actor=actor or self.actor, reason=reason)
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


class JobClient:
    """Submits and cancels jobs by command (the scheduler serves them), reads them from
    the log: what a service, or `tenantctl job`, uses."""

    def __init__(
        self, nc: NATS, subjects: Subjects, *, actor: str = "jobs-sdk", timeout: float = 5.0
    ) -> None:
        self.commands = CommandClient(nc, subjects, timeout)
        self.log = EventLog(nc.jetstream(), subjects, EVENTS)
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
        command = SubmitJob(
            tenant_id=tenant_id, kind=kind, args=args or {}, priority=priority,
            not_before=not_before, max_attempts=max_attempts, timeout_s=timeout_s,
            idempotency_key=idempotency_key or str(uuid.uuid4()), actor=self.actor,
            reason=reason,
        )  # fmt: skip
        result = (await self.commands.send(command)).result or {}
        return Submitted(tenant_id, result["job_id"], result["seq"], result["duplicate"])

    async def cancel(self, tenant_id: str, job_id: str, reason: str = "") -> Job:
        """Ask for a job to stop (see `CancelJob`); returns its state after."""
        command = CancelJob(tenant_id=tenant_id, job_id=job_id, actor=self.actor, reason=reason)
        await self.commands.send(command)
        return await self.get(tenant_id, job_id)

    async def get(self, tenant_id: str, job_id: str) -> Job:
        """A job's current state, from its events (see `JobLog.get`)."""
        return await JobLog(self.log).get(tenant_id, job_id)


class JobCommands:
    """The scheduler's handler of job commands."""

    def __init__(self, jobs: JobLog) -> None:
        self.jobs = jobs

    async def handle(self, command: TenantCommand) -> Outcome:
        """Submit or cancel; the result names the job."""
        if isinstance(command, SubmitJob):
            spec = JobSpec(**{name: getattr(command, name) for name in JobSpec.model_fields})
            submitted = await self.jobs.request(
                command.tenant_id, spec, command.idempotency_key, command.reason, command.actor
            )
            result = {"job_id": submitted.job_id, "seq": submitted.seq,
                      "duplicate": submitted.duplicate}  # fmt: skip
            return Outcome(replayed=submitted.duplicate, result=result)
        if isinstance(command, CancelJob):
            job = await self.jobs.cancel(
                command.tenant_id, command.job_id, command.reason, command.actor
            )
            return Outcome(result={"job_id": job.job_id, "status": str(job.status)})
        raise InvalidRequest(f"{command.name} is not a job command")
