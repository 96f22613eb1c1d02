"""Queueing admitted jobs into their pool's dramatiq queue (Redis broker).

dramatiq's Redis broker keeps a queue as a list of message ids,
`<ns>:<queue>`, and the messages in a hash, `<ns>:<queue>.msgs`, from enqueue
until a worker acknowledges (or rejects) them. Each attempt's message is stored
under an id of its own, so whether it is still queued or taken by a worker is
one lookup in that hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from tenantplane.services.scheduler.jobs import Job, JobStatus

ACTOR = "run_tenant_job"


def queue_name(pool: str) -> str:
    """The dramatiq queue of a pool."""
    return f"pool.{pool}"


def make_broker(redis_url: str, namespace: str) -> RedisBroker:
    """The dramatiq broker of an installation (its own Redis key namespace)."""
    # dramatiq's broker constructor carries no annotations.
    return RedisBroker(url=redis_url, namespace=f"{namespace}-dramatiq")  # type: ignore[no-untyped-call]


def snapshot_of(job: Job) -> dict[str, Any]:
    """A scheduled job as its queue message carries it."""
    return {
        "kind": job.kind, "args": job.args, "priority": job.priority,
        "max_attempts": job.max_attempts, "timeout_s": job.timeout_s,
        "pool": job.pool, "version": job.version,
    }  # fmt: skip


def from_snapshot(tenant_id: str, job_id: str, attempt: int, snapshot: dict[str, Any]) -> Job:
    """The scheduled job a queue message describes."""
    return Job(tenant_id, job_id, status=JobStatus.SCHEDULED, attempt=attempt, **snapshot)


def message_id(job: Job) -> str:
    """The Redis id of the queue message of the attempt `job` is scheduled for."""
    return f"{job.tenant_id}.{job.job_id}.{job.attempt}"


class Dispatcher:
    """Puts one attempt of a job on its pool's queue, and finds attempts lost from it."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self._declared: set[str] = set()
        # An enqueue failed since the last `lost`: its message may or may not be queued.
        self.unsure = False

    async def enqueue(self, job: Job) -> None:
        """Queue the attempt `job` is scheduled for; the worker's time limit is its timeout.

        The message carries what the worker needs to start (kind, args, limits and
        the `job.scheduled` sequence), so it reads the job only when that changed.
        """
        queue = queue_name(job.pool)
        message: dramatiq.Message[object] = dramatiq.Message(
            queue_name=queue,
            actor_name=ACTOR,
            args=(job.tenant_id, job.job_id, job.attempt),
            kwargs={"snapshot": snapshot_of(job)},
            options={
                "time_limit": int(job.timeout_s * 1000), "max_retries": 0,
                "redis_message_id": message_id(job),
            },
        )  # fmt: skip
        try:
            await asyncio.to_thread(self._enqueue, queue, message)
        except Exception:
            self.unsure = True
            raise

    def _enqueue(self, queue: str, message: dramatiq.Message[object]) -> None:
        if queue not in self._declared:
            self.broker.declare_queue(queue)
            self._declared.add(queue)
        # What `RedisBroker.enqueue` does, under the attempt's own id rather than a
        # random one per copy.
        self.broker.emit_before("enqueue", message, None)
        self.broker.do_enqueue(queue, message.options["redis_message_id"], message.encode())
        self.broker.emit_after("enqueue", message, None)

    async def lost(self, jobs: Sequence[Job]) -> list[Job]:
        """Of scheduled attempts, those whose message is gone: neither waiting in its
        queue nor taken by a worker (Redis lost it, or a worker dropped it unrun)."""
        present = await asyncio.to_thread(self._present, jobs) if jobs else []
        self.unsure = False
        return [job for job, here in zip(jobs, present, strict=True) if not here]

    def _present(self, jobs: Sequence[Job]) -> list[bool]:
        pipe = self.broker.client.pipeline(transaction=False)
        for job in jobs:
            pipe.hexists(self._key(f"{queue_name(job.pool)}.msgs"), message_id(job))
        return [bool(found) for found in pipe.execute()]

    async def depth(self, pool: str) -> int:
        """Messages waiting in a pool's queue."""
        return int(await asyncio.to_thread(self._depth, queue_name(pool)))

    def _depth(self, queue: str) -> int:
        return int(self.broker.client.llen(self._key(queue)) or 0)

    def _key(self, name: str) -> str:
        """A key of the broker's Redis layout (see the module's docstring)."""
        return f"{self.broker.namespace}:{name}"
