"""Per-tenant jobs: the lifecycle events of one job (one subject per job).

requested -> scheduled -> started -> succeeded
                 ^           |  \\-> failed (retry) -> scheduled ...
                 |           |  \\-> dead-lettered (no attempts left)
cancel requested -> cancelled (before start, or at the job's next check)

Beside the events, `LeaseRenewal` is what a worker publishes (on core NATS,
never stored) to show that it still runs its attempts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.envelope import Event, Message
from tenantplane.contracts.ids import JobId, Name, TenantId
from tenantplane.contracts.values import JsonData

Kind = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
Pool = Name
Priority = Annotated[int, Field(ge=0, le=9, description="higher runs first within a tenant")]


class _Job(Event):
    family: ClassVar[str] = "job"
    job_id: JobId


class JobSpec(Message):
    """What a job is: its kind and arguments, and how it is run."""

    kind: Kind
    args: dict[str, JsonData] = Field(default_factory=dict)
    priority: Priority = 5
    not_before: AwareDatetime | None = None
    max_attempts: int = Field(default=3, ge=1, le=50)
    timeout_s: float = Field(default=300.0, gt=0, le=86_400)


class JobRequested(_Job, JobSpec):
    """A job was asked for."""

    event_type: ClassVar[str] = "job.requested"


class JobScheduled(_Job):
    """The scheduler admitted the job and queued it in a pool (once per attempt)."""

    event_type: ClassVar[str] = "job.scheduled"
    pool: Pool
    attempt: int = Field(ge=1)


class JobStarted(_Job):
    """A worker started an attempt."""

    event_type: ClassVar[str] = "job.started"
    attempt: int = Field(ge=1)
    worker: str = Field(max_length=200)


class JobProgressed(_Job):
    """The job reported progress."""

    event_type: ClassVar[str] = "job.progressed"
    attempt: int = Field(ge=1)
    progress: float = Field(ge=0, le=1)
    message: str = Field(default="", max_length=1000)


class JobSucceeded(_Job):
    """An attempt finished well."""

    event_type: ClassVar[str] = "job.succeeded"
    attempt: int = Field(ge=1)
    result: dict[str, JsonData] = Field(default_factory=dict)


class JobFailed(_Job):
    """An attempt failed (or the job was refused at admission, attempt 0).

    With `retry_at` the job will be tried again then; without, it is over.
    """

    event_type: ClassVar[str] = "job.failed"
    attempt: int = Field(ge=0)
    error: str = Field(max_length=4000)
    retry_at: datetime | None = None


class JobDeadLettered(_Job):
    """Every attempt failed; the job will not run again unless retried by hand."""

    event_type: ClassVar[str] = "job.dead_lettered"
    attempts: int = Field(ge=1)
    error: str = Field(max_length=4000)


class JobCancelRequested(_Job):
    """Someone asked to cancel the job."""

    event_type: ClassVar[str] = "job.cancel_requested"


class JobCancelled(_Job):
    """The job stopped (or never started) because it was cancelled."""

    event_type: ClassVar[str] = "job.cancelled"
    attempt: int = Field(ge=0)


class _JobCommand(TenantCommand):
    service: ClassVar[str] = "scheduler"


class SubmitJob(_JobCommand, JobSpec):
    """Ask for a job; its id is derived from the tenant and the idempotency key, so a
    retried submit never makes a second job. The reply's result names the job."""

    name: ClassVar[str] = "job.submit"


class CancelJob(_JobCommand):
    """Ask for a job to stop: before it starts it never will; while it runs, at its
    next check."""

    name: ClassVar[str] = "job.cancel"
    job_id: JobId


class RetryJob(_JobCommand):
    """Run a finished job (failed, dead-lettered or cancelled) again, as a new job with
    the same spec; the reply's result names the new job. A retried retry (the same
    idempotency key) makes no second one."""

    name: ClassVar[str] = "job.retry"
    job_id: JobId


COMMANDS: tuple[type[TenantCommand], ...] = (SubmitJob, CancelJob, RetryJob)


class QueuedAttempt(Message):
    """One attempt of a job as its pool's queue carries it to a worker.

    It holds what the worker needs to start the attempt without reading the job:
    `version` is the sequence of the `job.scheduled` that queued it, so the
    worker's expected-version append of `job.started` fails if anything happened
    to the job since (a cancel request, another delivery), and only then is the
    job read.
    """

    tenant_id: TenantId
    job_id: JobId
    attempt: int = Field(ge=1)
    pool: Pool
    version: int = Field(ge=1)
    kind: Kind
    args: dict[str, JsonData] = Field(default_factory=dict)
    priority: Priority = 5
    max_attempts: int = Field(default=3, ge=1, le=50)
    timeout_s: float = Field(default=300.0, gt=0, le=86_400)


class RunningAttempt(Message):
    """One attempt a worker is running."""

    tenant_id: TenantId
    job_id: JobId
    attempt: int = Field(ge=1)


class LeaseRenewal(Message):
    """A worker's heartbeat: it still runs these attempts, so their leases hold, it runs
    these kinds of job, and it has just ended these attempts.

    Sent every third of a lease, on core NATS: an event per heartbeat would add
    to the jobs stream, per running job, several times the events of its whole
    life.
    """

    worker: str = Field(max_length=200)
    attempts: tuple[RunningAttempt, ...] = Field(max_length=4096)
    # The kinds the worker runs: a submit of a kind no live worker of the tenant's
    # pool runs is refused.
    kinds: tuple[Kind, ...] = Field(default=(), max_length=4096)
    # Attempts the worker has just ended, their last event appended: sent at once, so
    # the scheduler frees their slots before its intake has read that far in the log.
    ended: tuple[RunningAttempt, ...] = Field(default=(), max_length=4096)


EVENTS: tuple[type[Event], ...] = (
    JobRequested,
    JobScheduled,
    JobStarted,
    JobProgressed,
    JobSucceeded,
    JobFailed,
    JobDeadLettered,
    JobCancelRequested,
    JobCancelled,
)
