"""R10: a worker killed mid-job: each of its jobs ends within a lease (retried on another
worker, or failed `worker_lost`), and the pool's capacity and the tenant's slots come back."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.worker.pool import run_pool
from tests.support.jobs import KINDS, Tally, onboard
from tests.support.ops import scrape, value
from tests.support.reporting import report
from tests.support.running import eventually
from tests.support.services import in_background, serving, worker_process

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

JOBS = 20
DEFAULT_LEASE_S = Settings.model_fields["job_lease_s"].default
EXPIRED = "tenantplane_job_leases_expired_total"
IN_FLIGHT = "tenantplane_pool_in_flight_jobs"


@pytest.fixture
def lease_s(long: bool) -> float:
    """A 5 s lease; the default one with --long."""
    return DEFAULT_LEASE_S if long else 5.0


@pytest.fixture
def job_settings(job_settings: Settings, lease_s: float) -> Settings:
    """A pool as large as the jobs, and the lease."""
    return job_settings.model_copy(update={"pools": {"default": JOBS}, "job_lease_s": lease_s})


async def test_a_killed_workers_jobs_end_within_a_lease_and_its_capacity_comes_back(
    ops_url: str,
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    nc: NATS,
    settings: Settings,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    # Given 20 jobs running in one worker process, half of them with a second attempt left,
    # and another worker process of the same pool idle
    await onboard(client, redis, settings, "acme", **{"jobs.max_concurrency": JOBS})
    jobs = JobLog(event_log)
    before = await scrape(ops_url)
    async with Tally(event_log) as tally:
        with worker_process(job_settings, threads=JOBS) as doomed:
            submitted = [
                await jobs.submit("acme", "hangs_first", {"seconds": 300}, max_attempts=1 + i % 2)
                for i in range(JOBS)
            ]
            await eventually(lambda: _all(tally, JobStatus.RUNNING), timeout=30)
            with worker_process(job_settings, threads=4) as survivor:
                await eventually(lambda: serving(nc, settings, survivor), timeout=30)

                # When the first worker is killed
                os.kill(doomed.pid, signal.SIGKILL)
                killed = time.monotonic()
                ids = [s.job_id for s in submitted]
                bound = job_settings.job_lease_s + 10
                await tally.wait_finished(ids, timeout=bound + 5)

                # Then each job ended within a lease + 10 s: retried on the other worker, or
                # failed worker_lost when it had no attempt left
                took = [tally.finished_at[job_id] - killed for job_id in ids]
                assert max(took) <= bound, took
                for i, job_id in enumerate(ids):
                    job = tally.jobs[job_id]
                    if i % 2:
                        assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 2)
                    else:
                        assert (job.status, job.error) == (JobStatus.DEAD, "worker_lost")
                # ... and the pool's capacity came back, counted as 20 leases expired
                after = await scrape(ops_url)
                assert value(after, IN_FLIGHT, pool="default") == 0
                assert (
                    value(after, EXPIRED, pool="default") - value(before, EXPIRED, pool="default")
                    == JOBS
                )
                # ... and so did the tenant's slots: 20 more jobs run at once
                again = [await jobs.submit("acme", "nap", {"seconds": 1.0}) for _ in range(JOBS)]
                await tally.wait_finished([s.job_id for s in again], timeout=15)
    report(
        "R10", jobs=JOBS, lease_s=job_settings.job_lease_s,
        first_end_s=min(took), last_end_s=max(took), bound_s=bound,
    )  # fmt: skip


@pytest.mark.parametrize("lease_s", [1.5])
async def test_heartbeats_keep_a_job_running_for_several_leases(
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    # Given a short lease
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(event_log)
    async with (
        Tally(event_log) as tally,
        in_background(lambda stop: run_pool(job_settings, stop, "default", KINDS, threads=2)),
    ):
        # When a job runs for three leases
        submitted = await jobs.submit("acme", "nap", {"seconds": 4.5})
        await tally.wait_finished([submitted.job_id], timeout=20)
    # Then its worker's heartbeats kept it: one attempt, never lost
    job = tally.jobs[submitted.job_id]
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)
    assert tally.events[submitted.job_id]["job.failed"] == 0


async def _all(tally: Tally, status: JobStatus) -> bool:
    await asyncio.sleep(0)
    return tally.count(status) == JOBS
