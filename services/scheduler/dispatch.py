"""Queueing admitted jobs' attempts on their pool's queue (see `jobs.queue`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from tenantplane.services.jobs.aggregate import Job
from tenantplane.services.jobs.queue import (
    ACTOR,
    ATTEMPT_OPTION,
    message_id,
    message_of,
    messages_key,
    queue_name,
)


class Dispatcher:
    """Puts one attempt of a job on its pool's queue, and finds attempts lost from it."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self._declared: set[str] = set()
        # An enqueue failed since the last `lost`: its message may or may not be queued.
        self.unsure = False

    async def enqueue(self, jobs: Sequence[Job]) -> None:
        """Queue the attempts `jobs` are scheduled for, in one hop to Redis's thread; the
        worker's time limit is each job's timeout.

        The message (a `QueuedAttempt`) carries what the worker needs to start, so
        it reads the job only when that changed.
        """
        if not jobs:
            return
        try:
            await asyncio.to_thread(self._enqueue_all, [self._message(job) for job in jobs])
        except Exception:
            self.unsure = True
            raise

    @staticmethod
    def _message(job: Job) -> dramatiq.Message[object]:
        return dramatiq.Message(
            queue_name=queue_name(job.pool),
            actor_name=ACTOR,
            args=(),
            kwargs={},
            options={
                "time_limit": int(job.timeout_s * 1000), "max_retries": 0,
                "redis_message_id": message_id(job),
                ATTEMPT_OPTION: message_of(job).model_dump(mode="json"),
            },
        )  # fmt: skip

    def _enqueue_all(self, messages: list[dramatiq.Message[object]]) -> None:
        for message in messages:
            queue = message.queue_name
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
            pipe.hexists(messages_key(self.broker, job.pool), message_id(job))
        return [bool(found) for found in pipe.execute()]

    async def depth(self, pool: str) -> int:
        """Messages waiting in a pool's queue."""
        return int(await asyncio.to_thread(self._depth, queue_name(pool)))

    def _depth(self, queue: str) -> int:
        return int(self.broker.client.llen(f"{self.broker.namespace}:{queue}") or 0)
