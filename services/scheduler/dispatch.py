"""Queueing admitted jobs' attempts on their pool's queue (see `jobs.queue`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
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
    queue_key,
    queue_name,
)


class Dispatcher:
    """Puts one attempt of a job on its pool's queue, and finds attempts lost from it."""

    def __init__(
        self,
        broker: RedisBroker,
        announce: Callable[[str], Awaitable[None]] | None = None,
        *,
        taken_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        # Says that a pool's queue has new attempts (wakes its idle workers).
        self.announce = announce
        # How long a worker may hold an attempt it took from the queue without starting it.
        self.taken_s, self._clock = taken_s, clock
        self._declared: set[str] = set()
        # An enqueue failed since the last `lost`: its message may or may not be queued.
        self.unsure = False
        # Attempts seen taken by a worker and not started, since when: (job id, attempt).
        self._taken: dict[tuple[str, int], float] = {}

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
        """Of scheduled attempts, those whose message is lost: gone from Redis (Redis
        lost it, or a worker dropped it unrun), or taken by a worker that has not
        started it for `taken_s`.

        The second is a fetch whose reply never reached its worker (Redis or the
        connection died in between): dramatiq then holds the message as taken by a
        live worker for good. A worker that did take it and starts it late meets the
        copy's start refused: an attempt starts once.
        """
        where = await asyncio.to_thread(self._where, jobs) if jobs else []
        self.unsure = False
        now, taken, lost = self._clock(), {}, []
        for job, (held, waiting) in zip(jobs, where, strict=True):
            if not held:
                lost.append(job)
            elif not waiting:
                key = (job.job_id, job.attempt)
                since = self._taken.get(key, now)
                if now - since >= self.taken_s:
                    lost.append(job)  # queued again; if taken again, its time starts afresh
                else:
                    taken[key] = since
        self._taken = taken
        return lost

    def _where(self, jobs: Sequence[Job]) -> list[tuple[bool, bool]]:
        """For each attempt: whether Redis holds its message, and whether it waits in
        its queue."""
        pipe = self.broker.client.pipeline(transaction=False)
        for job in jobs:
            pipe.hexists(messages_key(self.broker, job.pool), message_id(job))
            pipe.lpos(queue_key(self.broker, job.pool), message_id(job))
        found = pipe.execute()
        return [
            (bool(held), waiting is not None)
            for held, waiting in zip(found[::2], found[1::2], strict=True)
        ]

    async def depth(self, pool: str) -> int:
        """Messages waiting in a pool's queue."""
        key = queue_key(self.broker, pool)
        return int(await asyncio.to_thread(self.broker.client.llen, key) or 0)
