"""Queueing admitted jobs into their pool's dramatiq queue (Redis broker)."""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from services.scheduler.jobs import Job, JobStatus

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


class Dispatcher:
    """Puts one attempt of a job on its pool's queue."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self._declared: set[str] = set()

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
            options={"time_limit": int(job.timeout_s * 1000), "max_retries": 0},
        )
        await asyncio.to_thread(self._enqueue, queue, message)

    def _enqueue(self, queue: str, message: dramatiq.Message[object]) -> None:
        if queue not in self._declared:
            self.broker.declare_queue(queue)
            self._declared.add(queue)
        self.broker.enqueue(message)

    async def depth(self, pool: str) -> int:
        """Messages waiting in a pool's queue."""
        return int(await asyncio.to_thread(self._depth, queue_name(pool)))

    def _depth(self, queue: str) -> int:
        client = self.broker.client
        return int(client.llen(f"{self.broker.namespace}:{queue}") or 0)
