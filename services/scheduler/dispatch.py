"""Queueing admitted jobs into their pool's dramatiq queue (Redis broker)."""

from __future__ import annotations

import asyncio

import dramatiq
from dramatiq.brokers.redis import RedisBroker

ACTOR = "run_tenant_job"


def queue_name(pool: str) -> str:
    """The dramatiq queue of a pool."""
    return f"pool.{pool}"


def make_broker(redis_url: str, namespace: str) -> RedisBroker:
    """The dramatiq broker of an installation (its own Redis key namespace)."""
    # dramatiq's broker constructor carries no annotations.
    return RedisBroker(url=redis_url, namespace=f"{namespace}-dramatiq")  # type: ignore[no-untyped-call]


class Dispatcher:
    """Puts one attempt of a job on its pool's queue."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self._declared: set[str] = set()

    async def enqueue(
        self, pool: str, tenant_id: str, job_id: str, attempt: int, timeout_s: float
    ) -> None:
        """Queue an attempt; the worker's time limit is the job's timeout."""
        queue = queue_name(pool)
        message: dramatiq.Message[object] = dramatiq.Message(
            queue_name=queue,
            actor_name=ACTOR,
            args=(tenant_id, job_id, attempt),
            kwargs={},
            options={"time_limit": int(timeout_s * 1000), "max_retries": 0},
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
