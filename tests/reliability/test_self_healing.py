"""R12: a fault in a long-running loop restarts it, is visible meanwhile, and loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import RedisStore
from tenantplane.services.scheduler.scheduler import Scheduler
from tests.support.cli import ACTOR
from tests.support.jobs import wait_for_status
from tests.support.ops import readyz, scrape, value
from tests.support.running import eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

RESTARTS = "tenantplane_loop_restarts_total"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A restart delay long enough to watch readiness while a loop is down."""
    return settings.model_copy(update={"loop_backoff_first_s": 1.5})


class Fault:
    """Makes the next call of a method raise, once."""

    def __init__(self) -> None:
        self.armed = asyncio.Event()
        self.fired = 0

    def wrap(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def faulty(*args: Any, **kwargs: Any) -> Any:
            if self.armed.is_set():
                self.armed.clear()
                self.fired += 1
                raise RuntimeError("injected fault")
            return await method(*args, **kwargs)

        return faulty


async def not_ready_naming(url: str, loop: str) -> bool:
    status, report = await readyz(url)
    return status == 503 and any(loop in reason for reason in report["problems"].values())


async def test_a_crashed_scheduler_loop_restarts_and_runs_every_job_once(
    ops_url: str,
    worker: None,
    client: CommandClient,
    event_log: EventLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a running system with a job done, and a fault armed in the scheduler's step
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    jobs = JobLog(event_log)
    first = await jobs.submit("acme", "noop", {})
    await wait_for_status(jobs, "acme", first.job_id, JobStatus.SUCCEEDED)
    before = await scrape(ops_url)
    fault = Fault()
    monkeypatch.setattr(Scheduler, "_step", fault.wrap(Scheduler._step))
    fault.armed.set()

    # When jobs are submitted while the loop crashes
    submitted = [await jobs.submit("acme", "noop", {}) for _ in range(20)]

    # Then readiness names the scheduler loop while it is down
    await eventually(lambda: not_ready_naming(ops_url, "scheduler: down"), timeout=5)
    # And after the restart every job runs, exactly once
    for job in submitted:
        done = await wait_for_status(jobs, "acme", job.job_id, JobStatus.SUCCEEDED)
        assert done.attempt == 1
    assert fault.fired == 1
    after = await scrape(ops_url)
    assert value(after, RESTARTS, loop="scheduler") - value(before, RESTARTS, loop="scheduler") == 1
    await eventually(lambda: _ready(ops_url), timeout=5)


async def test_a_crashed_projector_restarts_from_its_checkpoint_and_loses_nothing(
    ops_url: str,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the config service projecting, and a fault armed in the projector's commit
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    reader = ConfigReader(redis, settings.keys)
    await eventually(lambda: _has(reader, "acme"), timeout=5)
    before = await scrape(ops_url)
    fault = Fault()
    monkeypatch.setattr(RedisStore, "commit", fault.wrap(RedisStore.commit))
    fault.armed.set()

    # When config changes arrive while the projector crashes
    for i in range(1, 21):
        await client.send(SetConfig(tenant_id="acme", values={"rate_limit": i}, **ACTOR))

    # Then readiness names the projector while it is down
    await eventually(lambda: not_ready_naming(ops_url, "projector.config: down"), timeout=5)
    # And after the restart the read model holds every change
    await eventually(lambda: _rate_limit_is(reader, 20), timeout=10)
    assert (await reader.tenant("acme")).config_version >= 21
    after = await scrape(ops_url)
    grew = value(after, RESTARTS, loop="projector.config") - value(
        before, RESTARTS, loop="projector.config"
    )
    assert grew == 1
    await eventually(lambda: _ready(ops_url), timeout=5)


async def _ready(url: str) -> bool:
    status, _ = await readyz(url)
    return status == 200


async def _has(reader: ConfigReader, tenant: str) -> bool:
    return tenant in {t.tenant_id for t in await reader.tenants()}


async def _rate_limit_is(reader: ConfigReader, expected: int) -> bool:
    return (await reader.config("acme")).get("rate_limit") == expected
