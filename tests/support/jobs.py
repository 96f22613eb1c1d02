"""Job kinds for tests, and waiting on a job's state."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from services.scheduler.client import JobClient
from services.scheduler.jobs import Job, JobStatus
from services.worker.context import JobContext
from services.worker.kinds import JobKinds

KINDS = JobKinds()


@KINDS.job("noop")
def noop(ctx: JobContext) -> None:
    return None


@KINDS.job("echo.config")
def echo_config(ctx: JobContext, key: str) -> dict[str, Any]:
    return {"tenant": ctx.tenant_id, "value": ctx.config.get(key), "secrets": ctx.secrets()}


@KINDS.job("flaky")
def flaky(ctx: JobContext, fail_times: int) -> dict[str, Any]:
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
    return {"attempt": ctx.attempt}


@KINDS.job("slow")
def slow(ctx: JobContext, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.02)


async def wait_for_status(
    jobs: JobClient, tenant: str, job_id: str, *statuses: JobStatus, timeout: float = 20
) -> Job:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await jobs.get(tenant, job_id)
        if job.status in statuses:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} is {job.status}, not {statuses}, after {timeout}s")
        await asyncio.sleep(0.05)
