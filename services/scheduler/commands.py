"""The scheduler's handler of job commands (submit, retry, cancel)."""

from __future__ import annotations

from collections.abc import Callable

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.jobs import CancelJob, JobSpec, RetryJob, SubmitJob
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.jobs.aggregate import Job
from tenantplane.services.jobs.limits import pool_of
from tenantplane.services.jobs.log import JobLog, Submitted
from tenantplane.services.runtime.commands import Outcome
from tenantplane.services.runtime.errors import (
    InvalidRequest,
    InvalidTransition,
    TenantNotFound,
    UnknownJobKind,
)
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.scheduler.admission import kind_refusal
from tenantplane.services.scheduler.kinds import PoolKinds


class JobCommands:
    """Serves job commands by appending through the scheduler's `JobLog`.

    A request this serves is handed to `on_requested` (the scheduler's board) as soon
    as it is appended, so a submitted job need not wait until the scheduler's intake
    has read everything appended before it, such as another tenant's flood.
    """

    def __init__(
        self,
        jobs: JobLog,
        config: AsyncConfigClient,
        kinds: PoolKinds,
        default_pool: str,
        on_requested: Callable[[StoredEvent], object] | None = None,
    ) -> None:
        self.jobs, self.config, self.kinds, self.default_pool = jobs, config, kinds, default_pool
        self.on_requested = on_requested

    async def _require_kind(self, tenant_id: str, kind: str) -> None:
        """Refuse a kind that no live worker of the tenant's pool runs."""
        try:
            config = await self.config.get_config(tenant_id, allow_suspended=True)
        except TenantNotFound:
            return  # admission refuses the job, in the log, with the reason
        pool = pool_of(config, self.default_pool)
        served = self.kinds.served(pool)
        refusal = kind_refusal(kind, pool, served)
        if refusal is not None:
            raise UnknownJobKind(refusal, kind=kind, pool=pool, served=sorted(served or ()))

    async def handle(self, command: TenantCommand) -> Outcome:
        """Submit, retry or cancel; the result names the job."""
        if isinstance(command, SubmitJob):
            await self._require_kind(command.tenant_id, command.kind)
            spec = JobSpec(**{name: getattr(command, name) for name in JobSpec.model_fields})
            submitted = await self.jobs.request(
                command.tenant_id, spec, command.idempotency_key, command.reason, command.actor,
                self.on_requested,
            )  # fmt: skip
            return Outcome(replayed=submitted.duplicate, result=_submitted(submitted))
        if isinstance(command, RetryJob):
            job = await self.jobs.get(command.tenant_id, command.job_id)
            if not job.finished:
                raise InvalidTransition(
                    f"job {job.job_id} is {job.status}; only a finished job can be retried"
                )
            reason = f"retry of {job.job_id}" + (f": {command.reason}" if command.reason else "")
            submitted = await self.jobs.request(
                command.tenant_id, spec_of(job), command.idempotency_key, reason, command.actor,
                self.on_requested,
            )  # fmt: skip
            return Outcome(replayed=submitted.duplicate, result=_submitted(submitted))
        if isinstance(command, CancelJob):
            job = await self.jobs.cancel(
                command.tenant_id, command.job_id, command.reason, command.actor
            )
            return Outcome(result={"job_id": job.job_id, "status": str(job.status)})
        raise InvalidRequest(f"{command.name} is not a job command")


def spec_of(job: Job) -> JobSpec:
    """What `job` was asked to be (to run it again)."""
    return JobSpec(
        kind=job.kind, args=job.args, priority=job.priority, max_attempts=job.max_attempts,
        timeout_s=job.timeout_s,
    )  # fmt: skip


def _submitted(submitted: Submitted) -> dict[str, object]:
    return {"job_id": submitted.job_id, "seq": submitted.seq, "duplicate": submitted.duplicate}
