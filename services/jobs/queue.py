"""The pools' job queues: dramatiq queues on Redis, one per pool.

The scheduler puts each attempt on its pool's queue as a `QueuedAttempt`; the
workers of that pool take it from there. Both sides name queues, the actor and
message ids from here.

dramatiq's Redis broker keeps a queue as a list of message ids,
`<ns>:<queue>`, and the messages in a hash, `<ns>:<queue>.msgs`, from enqueue
until a worker acknowledges (or rejects) them. Each attempt's message is stored
under an id of its own, so whether it is still queued or taken by a worker is
one lookup in that hash.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Middleware
from dramatiq.brokers.redis import RedisBroker

from tenantplane.contracts.jobs import QueuedAttempt
from tenantplane.services.jobs.aggregate import Job, JobStatus

ACTOR = "run_tenant_job"
# The message option that carries the `QueuedAttempt` a message runs (see
# `services/worker/middleware.py`).
ATTEMPT_OPTION = "tenantplane"


def queue_name(pool: str) -> str:
    """The dramatiq queue of a pool."""
    return f"pool.{pool}"


def make_broker(
    redis_url: str, namespace: str, middleware: list[Middleware] | None = None
) -> RedisBroker:
    """The dramatiq broker of an installation (its own Redis key namespace); with
    `middleware`, exactly those (a pool's worker), else dramatiq's defaults."""
    # dramatiq's broker constructor carries no annotations.
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=redis_url, namespace=f"{namespace}-dramatiq", middleware=middleware
    )


def message_id(job: Job) -> str:
    """The Redis id of the queue message of the attempt `job` is scheduled for."""
    return f"{job.tenant_id}.{job.job_id}.{job.attempt}"


def messages_key(broker: RedisBroker, pool: str) -> str:
    """The hash of a pool's queued and taken messages (see the module's docstring)."""
    return f"{broker.namespace}:{queue_name(pool)}.msgs"


def message_of(job: Job) -> QueuedAttempt:
    """The queue message of the attempt `job` is scheduled for."""
    return QueuedAttempt(
        tenant_id=job.tenant_id, job_id=job.job_id, attempt=job.attempt, pool=job.pool,
        version=job.version, kind=job.kind, args=job.args, priority=job.priority,
        max_attempts=job.max_attempts, timeout_s=job.timeout_s,
    )  # fmt: skip


def job_of(message: QueuedAttempt) -> Job:
    """The job as the message that queued its attempt describes it."""
    fields: dict[str, Any] = message.model_dump(exclude={"tenant_id", "job_id"})
    job = Job(message.tenant_id, message.job_id, status=JobStatus.SCHEDULED)
    return job.updated(**fields)
