"""Attempts lost from the queue are dispatched again, and still run exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.jobs.queue import make_broker, messages_key, queue_name
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.scheduler import service as scheduler_service
from tenantplane.services.scheduler.dispatch import Dispatcher
from tenantplane.services.worker.pool import run_pool
from tests.support.jobs import KINDS, Tally, onboard
from tests.support.ops import scrape, value
from tests.support.reporting import report
from tests.support.running import eventually
from tests.support.services import in_background

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

REDISPATCHED = "tenantplane_job_attempts_redispatched_total"
CAPACITY = 8  # the default pool's, in `job_settings`


async def test_attempts_whose_queue_was_wiped_run_once_when_a_worker_comes(
    ops_url: str,
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    # Given 20 jobs and no worker: as many as the pool's capacity are queued
    await onboard(client, redis, settings, "acme", **{"jobs.max_concurrency": 20})
    jobs = JobLog(event_log)
    before = await scrape(ops_url)
    async with Tally(event_log) as tally:
        submitted = [await jobs.submit("acme", "noop") for _ in range(20)]
        await eventually(lambda: _scheduled(tally, CAPACITY), timeout=10)
        # (in the queue, not only scheduled: a step appends its picks, then enqueues them)
        messages = f"{settings.namespace}-dramatiq:{queue_name('default')}.msgs"
        await eventually(lambda: _holds(redis, messages, CAPACITY), timeout=10)

        # When the queue's keys vanish from Redis (as after FLUSHALL), and a worker starts
        queue_keys = [k async for k in redis.scan_iter(match=f"{settings.namespace}-dramatiq:*")]
        assert queue_keys
        await redis.delete(*queue_keys)
        async with in_background(
            lambda stop: run_pool(job_settings, stop, "default", KINDS, threads=4)
        ):
            await tally.wait_finished([s.job_id for s in submitted], timeout=30)

    # Then every job ran, exactly once, the lost attempts dispatched again
    for job in submitted:
        assert tally.jobs[job.job_id].status is JobStatus.SUCCEEDED
        assert tally.events[job.job_id]["job.started"] == 1
        assert tally.events[job.job_id]["job.scheduled"] == 1
    after = await scrape(ops_url)
    redispatched = value(after, REDISPATCHED, pool="default") - value(
        before, REDISPATCHED, pool="default"
    )
    assert redispatched == CAPACITY
    report("lost-queue", jobs=len(submitted), wiped=CAPACITY, redispatched=int(redispatched))


async def test_an_attempt_a_worker_took_but_never_received_runs_once_after_a_lease(
    service: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    # Given a scheduler whose leases last 2 s, and a job queued while no worker runs
    job_settings = job_settings.model_copy(update={"job_lease_s": 2.0, "job_queue_audit_s": 0.5})
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(event_log)
    async with (
        Tally(event_log) as tally,
        in_background(lambda stop: scheduler_service.run(job_settings, stop)),
    ):
        submitted = await jobs.submit("acme", "noop")
        taker = make_broker(job_settings.redis_url, job_settings.namespace)
        try:
            messages = messages_key(taker, "default")
            await eventually(lambda: _holds(redis, messages, 1), timeout=10)
            # When a worker's fetch takes it from the queue but the reply never reaches the
            # worker (Redis or the connection died in between), and a worker then runs
            assert len(await asyncio.to_thread(taker.do_fetch, queue_name("default"), 1)) == 1
        finally:
            taker.close()
        async with in_background(
            lambda stop: run_pool(job_settings, stop, "default", KINDS, threads=4)
        ):
            await tally.wait_finished([submitted.job_id], timeout=15)

    # Then the attempt was queued again and ran, once
    job = tally.jobs[submitted.job_id]
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)
    assert tally.events[submitted.job_id]["job.started"] == 1


async def test_an_attempt_whose_enqueue_failed_is_queued_by_the_audit(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Redis failing the next enqueue (after `job.scheduled` is appended)
    await onboard(client, redis, settings, "acme")
    fault = OneFault()
    monkeypatch.setattr(Dispatcher, "_enqueue_all", fault.wrap(Dispatcher._enqueue_all))
    jobs = JobLog(event_log)
    async with Tally(event_log) as tally:
        # When a job is submitted
        submitted = await jobs.submit("acme", "noop")
        await tally.wait_finished([submitted.job_id], timeout=20)
    # Then it ran once, from its first attempt
    assert fault.fired
    job = tally.jobs[submitted.job_id]
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)
    assert tally.events[submitted.job_id]["job.started"] == 1


class OneFault:
    """Makes the first call of a (sync) method raise a Redis connection error."""

    def __init__(self) -> None:
        self.fired = False

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def faulty(*args: Any, **kwargs: Any) -> Any:
            if not self.fired:
                self.fired = True
                raise RedisConnectionError("injected: Redis went away")
            return method(*args, **kwargs)

        return faulty


async def _scheduled(tally: Tally, count: int) -> bool:
    return tally.count(JobStatus.SCHEDULED) == count


async def _holds(redis: aioredis.Redis, key: str, count: int) -> bool:
    return int(await redis.hlen(key)) == count
