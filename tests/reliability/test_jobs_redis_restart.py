"""R8: Redis killed (kill -9) and restarted from its append-only file while 300 jobs are in
flight: every job runs to success exactly once, by itself, and `/readyz` says the scheduler
is stuck meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tests.support.jobs import Tally, onboard
from tests.support.ops import readyz
from tests.support.reporting import report
from tests.support.running import eventually
from tests.support.services import serving, worker_process

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

JOBS = 300
THREADS = 16


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[embedded.ServerProcess]:
    """A Redis of this test's own, persisting every write to its append-only file each second."""
    server = embedded.redis_server(tmp_path / "own-redis", persist=True)
    server.args += ["--appendfsync", "everysec"]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(settings: Settings, own_redis: embedded.ServerProcess) -> Settings:
    return settings.model_copy(update={"redis_url": own_redis.url})


@pytest.fixture
def job_settings(job_settings: Settings) -> Settings:
    return job_settings.model_copy(update={"pools": {"default": 2 * THREADS}})


async def test_jobs_in_flight_when_redis_is_killed_each_run_once_after_it_returns(
    ops_url: str,
    scheduler: None,
    own_redis: embedded.ServerProcess,
    client: CommandClient,
    redis: aioredis.Redis,
    nc: NATS,
    settings: Settings,
    job_settings: Settings,
    event_log: EventLog,
    long: bool,
) -> None:
    # Given 300 jobs of 0.2 s going through a worker process, a fifth of them done
    limits = {"jobs.max_concurrency": 2 * THREADS, "jobs.rate_per_minute": 1_000_000}
    await onboard(client, redis, settings, "acme", **limits)
    jobs = JobLog(event_log)
    down_s = 15.0 if long else 5.0
    async with Tally(event_log) as tally:
        with worker_process(job_settings, threads=THREADS) as worker:
            await eventually(lambda: serving(nc, settings, worker), timeout=30)
            submitted = [await jobs.submit("acme", "nap", {"seconds": 0.2}) for _ in range(JOBS)]
            await eventually(lambda: _done(tally, JOBS // 5), timeout=30)

            # When Redis is killed, stays away a while, and comes back from its append-only file
            own_redis.kill()
            done_at_kill = tally.count(JobStatus.SUCCEEDED)
            # ... /readyz names the scheduler's loop, which cannot schedule
            await eventually(lambda: _scheduler_stuck(ops_url), timeout=down_s)
            await asyncio.sleep(max(0.0, down_s - 1))
            own_redis.start()
            back = time.monotonic()
            await redis.connection_pool.disconnect()  # this test's client: its sockets died

            # Then every job succeeds, each once, within 30 s, with no process restarted
            await tally.wait_finished([s.job_id for s in submitted], timeout=30)
            took = max(tally.finished_at.values()) - back
            assert took <= 30
            assert worker.poll() is None
    for job in submitted:
        assert tally.jobs[job.job_id].status is JobStatus.SUCCEEDED
        events = tally.events[job.job_id]
        assert (events["job.started"], events["job.succeeded"], events["job.failed"]) == (1, 1, 0)
    await eventually(lambda: _ready(ops_url), timeout=10)
    report(
        "R8", jobs=JOBS, done_at_kill=done_at_kill, redis_down_s=down_s,
        all_done_after_return_s=took,
    )  # fmt: skip


async def _done(tally: Tally, count: int) -> bool:
    return tally.count(JobStatus.SUCCEEDED) >= count


async def _scheduler_stuck(url: str) -> bool:
    status, report = await readyz(url)
    return status == 503 and "scheduler: " in report["problems"].get("scheduler.loops", "")


async def _ready(url: str) -> bool:
    status, _ = await readyz(url)
    return status == 200
