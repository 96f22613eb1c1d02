"""Queueing admitted jobs' attempts on their pool's queue (see `jobs.queue`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

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

    def __init__(
        self, broker: RedisBroker, announce: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        self.broker = broker
        # Says that a pool's queue has new attempts (wakes its idle workers).
        self.announce = announce
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
        if self.announce is not None:
            for pool in {job.pool for job in jobs}:
                # Only a hint: a worker not woken finds the attempt when it next polls.
                with contextlib.suppress(Exception):
                    await self.announce(pool)

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
        """What `RedisBroker.enqueue` does for each message, under the attempt's own id
        rather than a random one per copy, in one round trip for all of them."""
        broker = self.broker
        for queue in {message.queue_name for message in messages} - self._declared:
            broker.declare_queue(queue)
            self._declared.add(queue)
        for message in messages:
            broker.emit_before("enqueue", message, None)
        # The arguments `broker.do_enqueue` gives dramatiq's dispatch script (dramatiq is
        # pinned), sent together instead of one round trip each.
        calls: list[list[EncodableT]] = [
            [
                "enqueue", current_millis(), message.queue_name, broker.broker_id,
                broker.heartbeat_timeout, broker.dead_message_ttl,
                broker._should_do_maintenance("enqueue"),
                broker._max_unpack_size(),  # type: ignore[no-untyped-call]
                message.options["redis_message_id"], message.encode(),
            ]
            for message in messages
        ]  # fmt: skip
        try:
            self._dispatch_all(calls)
        except NoScriptError:
            # Redis restarted or forgot its scripts; then none of the calls ran.
            broker.client.script_load(broker.scripts["dispatch"].script)
            self._dispatch_all(calls)
        for message in messages:
            broker.emit_after("enqueue", message, None)

    def _dispatch_all(self, calls: list[list[EncodableT]]) -> None:
        pipe = self.broker.client.pipeline(transaction=False)
        sha = self.broker.scripts["dispatch"].sha
        for args in calls:
            pipe.evalsha(sha, 1, self.broker.namespace, *args)
        pipe.execute()

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
