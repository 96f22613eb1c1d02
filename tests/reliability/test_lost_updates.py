"""S6: read-modify-write with `if_version` loses no update.

Two writers, each with its own connections, increment one counter 500 times:
read the value and its config version, set value + 1 with `if_version`, and
on a conflict read again and retry. Without the check, racing increments
overwrite each other; with it, the final value is exactly 1,000.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.errors import ConcurrencyConflict
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import ACTOR, tenantctl
from tests.support.reporting import report

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


async def increment(settings: Settings, times: int) -> int:
    """Increment `counter` of acme `times` times; returns how many conflicts it retried."""
    nc, redis = await connect_nats(settings, "incrementer"), connect_redis(settings)
    client, conflicts = CommandClient(nc, settings.subjects), 0
    reader = AsyncConfigClient(nc, redis, settings.subjects, settings.keys)
    try:
        for _ in range(times):
            while True:
                config = await reader.get_config("acme", fresh=True)
                command = SetConfig(
                    tenant_id="acme", values={"counter": config.get_int("counter") + 1},
                    if_version=config.config_version, **ACTOR,
                )  # fmt: skip
                try:
                    reply = await client.send(command)
                except ConcurrencyConflict:
                    conflicts += 1
                    continue
                assert reply.seq is not None
                await wait_applied(
                    nc, redis, settings.subjects, settings.keys, "config", reply.seq, 5
                )
                break
    finally:
        await redis.aclose()
        await nc.close()
    return conflicts


async def test_racing_read_modify_writes_with_if_version_lose_nothing(
    client: CommandClient, settings: Settings
) -> None:
    # Given a counter at 0
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    reply = await client.send(SetConfig(tenant_id="acme", values={"counter": 0}, **ACTOR))
    assert reply.seq is not None
    # When two writers increment it 500 times each, racing
    started = time.monotonic()
    conflicts = await asyncio.gather(increment(settings, 500), increment(settings, 500))
    elapsed = time.monotonic() - started
    # Then every increment counts
    nc, redis = client.nc, connect_redis(settings)
    reader = AsyncConfigClient(nc, redis, settings.subjects, settings.keys)
    try:
        final = await reader.get_config("acme", fresh=True)
    finally:
        await redis.aclose()
    assert final.get_int("counter") == 1000
    assert sum(conflicts) > 0  # they did race
    report("S6", final=1000, conflicts_retried=sum(conflicts), seconds=round(elapsed, 1))


async def test_the_cli_refuses_a_stale_if_version_naming_the_current_one(
    client: CommandClient, settings: Settings
) -> None:
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    first = await client.send(SetConfig(tenant_id="acme", values={"counter": 1}, **ACTOR))
    assert first.seq is not None
    ok = await asyncio.to_thread(
        tenantctl, settings, "config", "set", "acme", "counter=2", "--if-version", str(first.seq)
    )
    assert ok.returncode == 0, ok.stderr
    stale = await asyncio.to_thread(
        tenantctl, settings, "config", "set", "acme", "counter=3", "--if-version", str(first.seq)
    )
    assert stale.returncode == 1
    assert "concurrency_conflict" in stale.stderr
    assert f"expected last sequence {first.seq}" in stale.stderr
