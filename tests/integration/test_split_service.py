"""A service's commands and projections in two processes (`tenantctl serve --only`)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from bench.common import tenantctl_process, wait_serving
from tenantplane.contracts import EVENTS
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import Unavailable
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import checkpoint, wait_applied
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import ACTOR, tenantctl
from tests.support.jobs import onboard, wait_for_status
from tests.support.running import eventually
from tests.support.services import worker_process

pytestmark = pytest.mark.integration


async def test_config_commands_and_its_projection_run_in_two_processes(
    settings: Settings, nc: NATS, redis: aioredis.Redis
) -> None:
    client = CommandClient(nc, settings.subjects)
    probe = settings.subjects.command("config", RegisterTenant.name)
    # Given a process serving only the config service's projection
    with tenantctl_process(settings, "serve", "config", "--only", "projections"):
        # Then it answers no command
        await asyncio.sleep(1.0)
        with pytest.raises(Unavailable, match="no config service is running"):
            await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
        # When another process serves only its commands
        with tenantctl_process(settings, "serve", "config", "--only", "commands"):
            await wait_serving(nc, probe)
            await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
            reply = await client.send(SetConfig(tenant_id="acme", values={"k": 1}, **ACTOR))
            assert reply.seq is not None
            # Then the first process projects what the second appended
            await wait_applied(
                nc, redis, settings.subjects, settings.keys, "config", reply.seq, timeout=15
            )
            assert (await ConfigReader(redis, settings.keys).config("acme"))["k"] == 1
    # And a commands-only process projects nothing
    with tenantctl_process(settings, "serve", "config", "--only", "commands"):
        await wait_serving(nc, probe)
        reply = await client.send(SetConfig(tenant_id="acme", values={"k": 2}, **ACTOR))
        assert reply.seq is not None
        await asyncio.sleep(1.0)
        assert await checkpoint(redis, settings.keys, "config") < reply.seq


async def test_the_scheduler_and_its_job_history_run_in_two_processes(
    settings: Settings, client: CommandClient, nc: NATS, redis: aioredis.Redis
) -> None:
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(EventLog(nc.jetstream(), settings.subjects, EVENTS))
    # Given one process that only schedules, and a worker
    with (
        tenantctl_process(settings, "serve", "scheduler", "--only", "commands"),
        worker_process(settings, threads=2),
    ):
        # When a job is submitted, then it runs
        submitted = await jobs.submit("acme", "noop")
        await wait_for_status(jobs, "acme", submitted.job_id, JobStatus.SUCCEEDED, timeout=30)
        # But no history of it is written
        await asyncio.sleep(1.0)
        assert not await _in_history(settings, submitted.job_id)
        # Until a process runs only the job history
        with tenantctl_process(settings, "serve", "scheduler", "--only", "projections"):
            await eventually(lambda: _in_history(settings, submitted.job_id), timeout=30)


async def _in_history(settings: Settings, job_id: str) -> bool:
    listed = await asyncio.to_thread(
        tenantctl, settings, "job", "list", "--tenant", "acme", "-o", "json"
    )
    assert listed.returncode == 0, listed.stderr
    return job_id in listed.stdout


def test_only_config_router_and_scheduler_split(settings: Settings) -> None:
    done = tenantctl(settings, "serve", "scheduler", "pools", "--only", "commands")
    assert done.returncode == 2
    assert "--only splits config, router, scheduler only; pools run whole" in done.stderr
