"""Jobs for services and operators: submit and cancel by command, read from the log.

Submit and cancel are commands the scheduler serves (so a caller needs no
right to write the log); a job's state is read from its events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.aio.client import Client as NATS

from tenantplane.contracts import EVENTS
from tenantplane.contracts.jobs import CancelJob, JobSpec, RetryJob, SubmitJob
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.jobs.aggregate import Job, job_id_for
from tenantplane.services.jobs.log import JobLog, Submits, Submitted
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import JobNotFound
from tenantplane.services.runtime.eventlog import EventLog

__all__ = ["JobClient", "JobNotFound", "Submitted", "job_id_for"]


class JobClient(Submits):
    """Submits and cancels jobs by command (the scheduler serves them), reads them from
    the log: what a service, or `tenantctl job`, uses."""

    def __init__(
        self, nc: NATS, subjects: Subjects, *, actor: str = "jobs-sdk", timeout: float = 5.0
    ) -> None:
        self.commands = CommandClient(nc, subjects, timeout)
        self.log = JobLog(EventLog(nc.jetstream(), subjects, EVENTS))
        self.actor = actor

    async def submit_spec(
        self, tenant_id: str, spec: JobSpec, key: str, reason: str = ""
    ) -> Submitted:
        command = SubmitJob(
            tenant_id=tenant_id, idempotency_key=key, actor=self.actor, reason=reason,
            **dict(spec),
        )  # fmt: skip
        result = (await self.commands.send(command)).result or {}
        return Submitted(tenant_id, result["job_id"], result["seq"], result["duplicate"])

    async def retry(self, tenant_id: str, job_id: str, reason: str = "") -> Submitted:
        """Run a finished job again, as a new job (see `RetryJob`)."""
        command = RetryJob(tenant_id=tenant_id, job_id=job_id, actor=self.actor, reason=reason)
        result = (await self.commands.send(command)).result or {}
        return Submitted(tenant_id, result["job_id"], result["seq"], result["duplicate"])

    async def cancel(self, tenant_id: str, job_id: str, reason: str = "") -> Job:
        """Ask for a job to stop (see `CancelJob`); returns its state after."""
        command = CancelJob(tenant_id=tenant_id, job_id=job_id, actor=self.actor, reason=reason)
        await self.commands.send(command)
        return await self.get(tenant_id, job_id)

    async def get(self, tenant_id: str, job_id: str) -> Job:
        """A job's current state, from its events (see `JobLog.get`)."""
        return await self.log.get(tenant_id, job_id)

    def follow(self, tenant_id: str, job_id: str) -> AsyncIterator[Job]:
        """The job now and after each of its events, live, until it ends (`JobLog.follow`)."""
        return self.log.follow(tenant_id, job_id)

    async def wait(self, tenant_id: str, job_id: str, timeout: float | None = None) -> Job:
        """The job once it has finished: its status, error and result (`JobLog.wait`)."""
        return await self.log.wait(tenant_id, job_id, timeout)
