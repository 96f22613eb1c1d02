"""The tenant context as dramatiq middleware: each actor of a pool runs inside its job.

A pool's broker carries `TenantContext`. For each message that names an attempt
of a job (the `QueuedAttempt` in its `tenantplane` option: what the scheduler
queues), the middleware starts the attempt before the actor runs (`job.started`
appended right after the `job.scheduled` that queued it, the tenant's config
read, the job's channel opened), binds the attempt's `JobContext` to the thread
(`current_job()`), and when the actor returns or raises, records how the
attempt ended and closes the channel. An attempt that must not run (delivered
twice, cancelled, its tenant suspended) is skipped, and the actor never runs.

So every actor of a pool, not only the one that runs registered kinds, gets its
tenant's config and scoped secrets the same way; none of them handles the
job's lifecycle. The pool's broker has no `Retries` middleware: a failed
attempt is retried by the scheduler's rule (`RetryPolicy`), not by dramatiq.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.middleware import SkipMessage

from tenantplane.contracts.jobs import QueuedAttempt
from tenantplane.services.jobs.queue import ATTEMPT_OPTION
from tenantplane.services.worker.context import JobContext
from tenantplane.services.worker.runner import JobRunner, Started

_thread = threading.local()


def current_job() -> JobContext:
    """The context of the attempt the calling thread runs (inside an actor of a pool).

    Raises:
        LookupError: the thread runs no attempt of a tenant's job.
    """
    return current_attempt().ctx


def current_attempt() -> Started:
    """The attempt the calling thread runs: its job (kind, args), its context, and the
    place for its result (a JSON object, recorded with `job.succeeded`)."""
    started: Started | None = getattr(_thread, "attempt", None)
    if started is None:
        raise LookupError("no tenant job runs on this thread")
    return started


class TenantContext(dramatiq.Middleware):
    """Starts and ends the attempt a message names around its actor."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        payload = message.options.get(ATTEMPT_OPTION)
        if payload is None:
            return  # not a tenant's job: the actor runs as dramatiq would run it
        started = self.runner.start(QueuedAttempt.model_validate(payload))
        if started is None:
            raise SkipMessage("the attempt must not run (see JobRunner.start)")
        _thread.attempt = started

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started: Started | None = getattr(_thread, "attempt", None)
        if started is None:
            return
        _thread.attempt = None
        self.runner.finish(started, exception)
