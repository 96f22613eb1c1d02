"""A service's commands and projections in two processes (`tenantctl serve --only`)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from bench.common import tenantctl_process, wait_serving
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import Unavailable
from tenantplane.services.runtime.readyourwrites import checkpoint, wait_applied
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import ACTOR, tenantctl

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


def test_only_config_and_router_split(settings: Settings) -> None:
    done = tenantctl(settings, "serve", "scheduler", "--only", "commands")
    assert done.returncode == 2
    assert "--only splits config and router only; scheduler run whole" in done.stderr
