"""The pool reconciler's local backend for real: worker processes come and go with assignments."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.pools.local import LocalPools
from tenantplane.services.pools.service import EXAMPLE_KINDS, reconciler_for
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import TenantplaneError
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.supervisor import LoopHandle
from tests.support.cli import ACTOR, send_and_wait
from tests.support.jobs import wait_for_status
from tests.support.running import eventually
from tests.support.services import in_background

pytestmark = pytest.mark.integration


async def test_a_dedicated_pool_runs_while_a_tenant_is_assigned_to_it(
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    nc: NATS,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    for tenant in ("acme", "beta"):
        command = RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR)
        await send_and_wait(client, redis, job_settings, command)
    backend = LocalPools(job_settings, EXAMPLE_KINDS)
    reconciler = reconciler_for(
        job_settings, ConfigReader(redis, job_settings.keys), backend, interval_s=60
    )

    async def assign(tenant: str, pool: str) -> None:
        command = SetConfig(tenant_id=tenant, values={"jobs.pool": pool}, **ACTOR)
        await send_and_wait(client, redis, job_settings, command)

    def run(stop: asyncio.Event) -> Coroutine[Any, Any, None]:
        return reconciler.run(nc, job_settings.subjects, LoopHandle("pools", stop))

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(backend.close)
        await stack.enter_async_context(in_background(run))
        assert await backend.actual() == {}
        # The config change wakes the reconciler long before its 60 s interval.
        await assign("acme", "dedicated-acme")

        async def started() -> bool:
            return "dedicated-acme" in await backend.actual()

        await eventually(started, timeout=10)
        assert (await reconciler.plan()).empty

        # acme's jobs run in its own pool's process; beta stays in the shared pool.
        jobs = JobLog(event_log)
        submitted = await jobs.submit("acme", "noop", {})
        done = await wait_for_status(jobs, "acme", submitted.job_id, JobStatus.SUCCEEDED)
        assert done.pool == "dedicated-acme"

        # A worker process that dies is started again by the next pass.
        (pid,) = backend.pids("dedicated-acme")
        os.kill(pid, signal.SIGKILL)

        async def restarted() -> bool:
            return (await reconciler.reconcile()).empty and backend.pids("dedicated-acme") != [pid]

        await eventually(restarted, timeout=10)

        # When the last tenant leaves the pool, its workers stop.
        await assign("acme", "default")

        async def removed() -> bool:
            return await backend.actual() == {} and backend.pids("dedicated-acme") == []

        await eventually(removed, timeout=20)


async def test_an_invalid_pool_name_is_refused_before_anything_runs(
    client: CommandClient,
) -> None:
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    with pytest.raises(TenantplaneError, match=r"jobs\.pool"):
        await client.send(
            SetConfig(tenant_id="acme", values={"jobs.pool": "../Evil Pool"}, **ACTOR)
        )
