"""The pools' job queues: dramatiq queues on Redis, one per pool.

The scheduler puts each attempt on its pool's queue as a `QueuedAttempt`; the
workers of that pool take it from there. Both sides name queues, the actor and
message ids from here.

dramatiq's Redis broker keeps a queue as a list of message ids,
`<ns>:<queue>`, and the messages in a hash, `<ns>:<queue>.msgs`, from enqueue
until a worker acknowledges (or rejects) them. Each attempt's message is stored
under an id of its own, so whether it is still queued or taken by a worker is
one lookup in that hash.

An idle dramatiq consumer polls Redis, backing off up to its idle timeout, so
a message could wait that long before a worker looks. Instead, the scheduler
says on core NATS when it has queued attempts of a pool (`Subjects.job_queued`),
and a worker's consumers, waiting on a `Wakeup`, fetch at once; polling at the
idle timeout remains for a wake-up that was lost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from dramatiq import Consumer, Middleware
from dramatiq.broker import MessageProxy
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
    redis_url: str,
    namespace: str,
    middleware: list[Middleware] | None = None,
    wakeup: Wakeup | None = None,
) -> RedisBroker:
    """The dramatiq broker of an installation (its own Redis key namespace); with
    `middleware`, exactly those (a pool's worker), else dramatiq's defaults; with
    `wakeup`, its idle consumers wait on it between polls (a pool's worker)."""
    if wakeup is not None:
        return _WokenBroker(
            wakeup, url=redis_url, namespace=f"{namespace}-dramatiq", middleware=middleware
        )
    # dramatiq's broker constructor carries no annotations.
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=redis_url, namespace=f"{namespace}-dramatiq", middleware=middleware
    )


def message_id(job: Job) -> str:
    """The Redis id of the queue message of the attempt `job` is scheduled for."""
    return f"{job.tenant_id}.{job.job_id}.{job.attempt}"


def queue_key(broker: RedisBroker, pool: str) -> str:
    """The list of a pool's queued message ids, in order (dramatiq's queue)."""
    return f"{broker.namespace}:{queue_name(pool)}"


def messages_key(broker: RedisBroker, pool: str) -> str:
    """The hash of a pool's queued and taken messages (see the module's docstring)."""
    return f"{queue_key(broker, pool)}.msgs"


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


class Wakeup:
    """Wakes a worker's idle consumers: `wake` on the loop, `wait` in a consumer thread;
    a consumer not woken polls its queue again after `idle_s`."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._changed = threading.Condition()
        self.count = 0  # wake-ups so far
        self.stopping = False

    def wake(self) -> None:
        """Attempts were queued: every waiting consumer fetches now."""
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def stop(self) -> None:
        """The worker stops: no consumer waits any more, so each sees the stop at once."""
        self.stopping = True
        self.wake()

    def wait(self, seen: int) -> None:
        """Wait until a wake-up after the `seen`-th, or `idle_s` (not once stopping)."""
        with self._changed:
            self._changed.wait_for(lambda: self.count != seen or self.stopping, self.idle_s)


class _WokenBroker(RedisBroker):
    """A broker whose consumers wait on `wakeup` when their queue is empty."""

    def __init__(self, wakeup: Wakeup, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.wakeup = wakeup

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        # The inner consumer fetches, or backs off at most 1 ms when the queue is empty;
        # the wait is the wake-up's, not dramatiq's `timeout`.
        return _WokenConsumer(super().consume(queue_name, prefetch, timeout=1), self.wakeup)


class _WokenConsumer(Consumer):
    """dramatiq's consumer, waiting on a `Wakeup` when idle."""

    def __init__(self, inner: Consumer, wakeup: Wakeup) -> None:
        self.inner, self.wakeup = inner, wakeup

    def __next__(self) -> MessageProxy | None:
        seen = self.wakeup.count  # a wake-up during the fetch ends the wait at once
        message = next(self.inner)
        if message is None:
            self.wakeup.wait(seen)
        return message

    def ack(self, message: MessageProxy) -> None:
        self.inner.ack(message)

    def nack(self, message: MessageProxy) -> None:
        self.inner.nack(message)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        self.inner.requeue(messages)

    def close(self) -> None:
        self.inner.close()
