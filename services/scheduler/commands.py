"""The scheduler's handler of job commands (submit, cancel)."""

from __future__ import annotations

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.jobs import CancelJob, JobSpec, SubmitJob
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.commands import Outcome
from tenantplane.services.runtime.errors import InvalidRequest


class JobCommands:
    """Serves job commands by appending through the scheduler's `JobLog`."""

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
