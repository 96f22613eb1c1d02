"""Helpers for tests that drive the config service: commands that wait, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import redis.asyncio as aioredis

from tenantplane.contracts.commands import Command
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings

ACTOR = {"actor": "ops@test", "reason": "test"}


async def send_and_wait(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, command: Command
) -> int:
    reply = await client.send(command)
    assert reply.seq is not None
    await wait_applied(
        client.nc, redis, settings.subjects, settings.keys, "config", reply.seq, timeout=5
    )
    return reply.seq


def tenantctl(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    merged = {
        **os.environ,
        "TENANTPLANE_NATS_URL": settings.nats_url,
        "TENANTPLANE_REDIS_URL": settings.redis_url,
        "TENANTPLANE_NAMESPACE": settings.namespace,
        "TENANTPLANE_DATABASE_URL": settings.database_url,
        "TENANTPLANE_ACTOR": "cli@test",
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "tenantplane.services.cli", *args],
        env=merged,
        capture_output=True,
        text=True,
        timeout=30,
    )
