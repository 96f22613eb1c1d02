"""S5: a job of tenant A obtains nothing of tenant B through its context.

A job walks every object reachable from its context (attributes, slots,
closures, bound methods, containers) looking for tenant B's secret and config
values and for the worker's connections; it finds none, and its `secrets()`
are A's alone. The same in the shared pool and in A's dedicated pool.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.jobs import JobSucceeded
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.worker.pool import run_pool
from tests.support import jobs as test_jobs
from tests.support.cli import ACTOR, send_and_wait
from tests.support.jobs import wait_for_status
from tests.support.reporting import report
from tests.support.services import in_background

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
B_SECRET, B_VALUE = "b-secret-4f2c9e", "b-value-77a1"
# What job code must never reach: the worker's connections, its runner, other clients.
FORBIDDEN = ("nats.aio.client.Client", "redis", "EventLog", "JobRunner", "AsyncConfigClient")


async def _tenants(client: CommandClient, redis: aioredis.Redis, settings: Settings) -> None:
    for tenant, secret, value in (("ta", "a-secret", "a-value"), ("tb", B_SECRET, B_VALUE)):
        await send_and_wait(
            client, redis, settings, RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR)
        )
        values = {"secret.token": secret, "marker": value}
        await send_and_wait(client, redis, settings, SetConfig(tenant_id=tenant, values=values,
                                                               **ACTOR))  # fmt: skip


async def _snoop(event_log: EventLog) -> dict[str, object]:
    jobs = JobLog(event_log)
    submitted = await jobs.submit("ta", "snoop", {"looking_for": [B_SECRET, B_VALUE]})
    await wait_for_status(jobs, "ta", submitted.job_id, JobStatus.SUCCEEDED, timeout=30)
    subject = event_log.subjects.job("ta", submitted.job_id)
    async for stored in event_log.read_subject(subject):
        if isinstance(stored.envelope.data, JobSucceeded):
            return dict(stored.envelope.data.result)
    raise AssertionError("the job succeeded without a result")


def _assert_isolated(result: dict[str, object], pool: str) -> None:
    assert result["found"] == [], result["found"]
    kinds = result["kinds"]
    assert isinstance(kinds, list)
    leaks = [k for k in kinds if any(f in k for f in FORBIDDEN)]
    assert leaks == []
    assert result["secrets"] == {"secret.token": "a-secret"}
    report("S5", pool=pool, objects_reached=len(kinds), found=0)


async def test_a_job_in_the_shared_pool_reaches_nothing_of_another_tenant(
    worker: None, client: CommandClient, redis: aioredis.Redis, settings: Settings,
    event_log: EventLog,
) -> None:  # fmt: skip
    await _tenants(client, redis, settings)
    _assert_isolated(await _snoop(event_log), "default")


async def test_a_job_in_a_dedicated_pool_reaches_nothing_of_another_tenant(
    scheduler: None, client: CommandClient, redis: aioredis.Redis, job_settings: Settings,
    event_log: EventLog,
) -> None:  # fmt: skip
    await _tenants(client, redis, job_settings)
    await send_and_wait(
        client, redis, job_settings, SetConfig(tenant_id="ta", values={"jobs.pool": "vip"}, **ACTOR)
    )
    pool = in_background(lambda stop: run_pool(job_settings, stop, "vip", test_jobs.KINDS, 2))
    async with pool:
        result = await _snoop(event_log)
    _assert_isolated(result, "vip")
