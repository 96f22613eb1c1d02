"""Services running in the test process (config, router, scheduler, worker) as fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from bench.common import tenantctl_process
from tenantplane.contracts.routing import PinTenant
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config import service as config_service
from tenantplane.services.router import service as router_service
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.ops import gather_status
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.scheduler import service as scheduler_service
from tenantplane.services.worker.pool import run_pool
from tests.support import jobs as test_jobs


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings,
    run: Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]],
    probe: str,
    probe_settings: Settings | None = None,
) -> AsyncIterator[None]:
    """Run a service in this process until the block ends; `probe` is a subject it serves
    (asked with `probe_settings`' connection, the service's own by default)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    nc = await connect_nats(probe_settings or settings, "probe")
    try:
        for _ in range(200):
            try:
                await nc.request(probe, b"{}", timeout=0.1)
                break
            except Exception:
                if task.done():
                    await task
                await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"service serving {probe} did not start")
        yield
    finally:
        await nc.close()
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def service(settings: Settings, nc: NATS) -> AsyncIterator[None]:
    """The config service (after `nc`, so the test's streams outlive it)."""
    probe = settings.subjects.command("config", RegisterTenant.name)
    async with running_service(settings, config_service.run, probe):
        yield


@pytest.fixture
async def router(settings: Settings, service: None) -> AsyncIterator[None]:
    """The router service (with the config service, which owns tenants)."""
    probe = settings.subjects.command("router", PinTenant.name)
    async with running_service(settings, router_service.run, probe):
        yield


@pytest.fixture
def client(nc: NATS, settings: Settings, service: None) -> CommandClient:
    return CommandClient(nc, settings.subjects)


@contextlib.asynccontextmanager
async def in_background(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    """Run a service coroutine until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    await asyncio.sleep(0.05)
    if task.done():
        await task
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@pytest.fixture
def job_settings(settings: Settings) -> Settings:
    """Fast retries for tests."""
    return settings.model_copy(update={"job_retry_base_s": 0.05, "pools": {"default": 8}})


@pytest.fixture
async def scheduler(job_settings: Settings, service: None) -> AsyncIterator[None]:
    async with in_background(lambda stop: scheduler_service.run(job_settings, stop)):
        yield


@pytest.fixture
async def worker(job_settings: Settings, scheduler: None) -> AsyncIterator[None]:
    async with in_background(
        lambda stop: run_pool(job_settings, stop, "default", test_jobs.KINDS, threads=4)
    ):
        yield


def worker_process(
    settings: Settings, threads: int, pool: str = "default"
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A worker process of `pool` running the test job kinds, until the block ends (or a
    test kills it)."""
    args = ["--pool", pool, "--threads", str(threads), "--kinds", "tests.support.jobs:KINDS"]
    return tenantctl_process(settings, "worker", "run", *args)


async def serving(nc: NATS, settings: Settings, process: subprocess.Popen[bytes]) -> bool:
    """Whether a worker process answers status requests (it consumes its queue by then)."""
    replies = await gather_status(nc, settings.subjects, window_s=0.2)
    return any(r["instance"].endswith(f":{process.pid}") for r in replies)
