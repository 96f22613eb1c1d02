"""A worker pool process: dramatiq threads running one pool's queue."""

from __future__ import annotations

import asyncio
import os
import socket

import dramatiq
import structlog
from dramatiq.middleware import ShutdownNotifications, TimeLimit
from nats.aio.msg import Msg

from tenantplane.contracts import EVENTS
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.jobs.queue import ACTOR, Wakeup, make_broker, queue_name
from tenantplane.services.runtime.app import supervisor_for
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.localstate import resolve_jobs_redis_url
from tenantplane.services.runtime.ops import announced, nats_connected, redis_answers
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.worker.heartbeat import Heartbeat
from tenantplane.services.worker.kinds import JobKinds
from tenantplane.services.worker.middleware import TenantContext, current_attempt
from tenantplane.services.worker.runner import JobRunner

log = structlog.get_logger(__name__)


async def run_pool(
    settings: Settings, stop: asyncio.Event, pool: str, kinds: JobKinds, threads: int = 4
) -> None:
    """Run `pool`'s jobs with `threads` worker threads until `stop` is set."""
    nc = await connect_nats(settings, f"tenantplane-worker-{pool}")
    redis = connect_redis(settings)
    name = f"{pool}@{socket.gethostname()}:{os.getpid()}"
    config = AsyncConfigClient(nc, redis, settings.subjects, settings.keys, pool=pool, actor=name)
    await config.start()
    runner = JobRunner(
        asyncio.get_running_loop(),
        EventLog(nc.jetstream(), settings.subjects, EVENTS),
        config,
        pool,
        name,
        backoff_base_s=settings.job_retry_base_s,
        backoff_max_s=settings.job_retry_max_s,
    )
    heartbeat = Heartbeat(
        nc, settings.subjects, pool, name, runner.running, settings.job_lease_s / 3, kinds.names()
    )
    runner.on_ended = heartbeat.ended
    # No `Retries`: a failed attempt is retried by the scheduler's rule, not by dramatiq.
    middleware = [TimeLimit(), ShutdownNotifications(), TenantContext(runner)]
    wakeup = Wakeup(settings.worker_poll_ms / 1000)
    broker = make_broker(resolve_jobs_redis_url(settings), settings.namespace, middleware, wakeup)

    async def woken(msg: Msg) -> None:
        wakeup.wake()

    # The scheduler says when it queued attempts here: idle consumers fetch at once.
    await nc.subscribe(settings.subjects.job_queued(pool), cb=woken)

    @dramatiq.actor(actor_name=ACTOR, queue_name=queue_name(pool), broker=broker)
    def run_tenant_job() -> None:
        """Run the registered kind of the attempt this message names."""
        attempt = current_attempt()
        attempt.result = kinds.run(attempt.ctx, attempt.job.kind, attempt.job.args)

    # The dramatiq CLI emits this at start; middleware such as the time limit's
    # watchdog thread only starts on it.
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(
        broker,
        queues={queue_name(pool)},
        worker_threads=threads,
        # How long a worker thread waits for work before it looks whether to stop.
        worker_timeout=100,
    )
    worker.start()
    # Heartbeats go on while the worker drains its running jobs at stop: their leases hold.
    drained = asyncio.Event()
    supervisor = supervisor_for(settings, drained)
    supervisor.start("heartbeat", heartbeat.run)
    log.info("worker.started", pool=pool, threads=threads, kinds=kinds.names())
    checks = {
        "nats": nats_connected(nc),
        "redis": redis_answers(redis),
        "loops": supervisor.readiness,
    }
    details = {"pool": pool, "threads": threads, "kinds": kinds.names()}
    try:
        async with announced(nc, settings.subjects, f"worker-{pool}", checks, lambda: details):
            await stop.wait()
    finally:
        wakeup.stop()
        await asyncio.to_thread(worker.stop)
        await runner.drain()  # the ends of the last attempts, still being appended
        drained.set()
        await supervisor.wait()
        broker.close()
        await config.close()
        await redis.aclose()
        await nc.close()
        log.info("worker.stopped", pool=pool)
