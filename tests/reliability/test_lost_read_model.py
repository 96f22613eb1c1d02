"""R9: Redis loses every read model (FLUSHALL) while nothing else happens.

The projectors find it within seconds (their stored checkpoint is gone), rebuild
beside the empty keys and swap the result in: the config and router read models
are back as they were, no SDK reader ever sees a tenant's version go backwards,
and the pool reconciler deletes no dedicated pool meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.routing import PinTenant, RegisterVersion, SetDefault
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.pools.desired import Plan, PoolSpec
from tenantplane.services.pools.service import reconciler_for
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis_ops import as_text
from tenantplane.services.runtime.supervisor import LoopHandle
from tests.support.cli import ACTOR
from tests.support.reporting import report
from tests.support.running import eventually
from tests.support.services import in_background

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
TENANTS = [f"t{i}" for i in range(20)]


class RecordingPools:
    """A pool backend (the orchestrator, outside the system) that records what it is told."""

    def __init__(self) -> None:
        self.running: dict[str, PoolSpec] = {}
        self.deleted: list[str] = []

    async def actual(self) -> dict[str, PoolSpec]:
        return dict(self.running)

    async def apply(self, plan: Plan) -> None:
        for spec in (*plan.create, *plan.update):
            self.running[spec.name] = spec
        for name in plan.delete:
            self.deleted.append(name)
            self.running.pop(name, None)

    async def close(self) -> None:
        return None


async def dump(redis: aioredis.Redis, namespace: str) -> dict[bytes, Any]:
    """Every key of the installation with its value."""
    found: dict[bytes, Any] = {}
    async for key in redis.scan_iter(match=f"{namespace}:*"):
        kind = as_text(await redis.type(key))
        if kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "set":
            found[key] = await redis.smembers(key)
        else:
            found[key] = await redis.get(key)
    return found


async def test_a_flushed_redis_is_rebuilt_and_no_reader_goes_backwards(
    router: None,
    client: CommandClient,
    nc: NATS,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    # Given tenants with config, one on a dedicated pool, and routes
    for tenant in TENANTS:
        await client.send(RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR))
        await client.send(SetConfig(tenant_id=tenant, values={"rate_limit": 3}, **ACTOR))
    last = await client.send(SetConfig(tenant_id="t0", values={"jobs.pool": "vip"}, **ACTOR))
    await client.send(
        RegisterVersion(target="billing", version="v1", upstream="http://127.0.0.1:1", **ACTOR)
    )
    await client.send(SetDefault(target="billing", version="v1", **ACTOR))
    pinned = await client.send(PinTenant(target="billing", tenant_id="t1", version="v1", **ACTOR))
    for projection, reply in (("config", last), ("router", pinned)):
        assert reply.seq is not None
        await wait_applied(nc, redis, settings.subjects, settings.keys, projection, reply.seq)
    before = await dump(redis, settings.namespace)

    # And an SDK reader, and a pool reconciler running the dedicated pool
    sdk = AsyncConfigClient(nc, redis, settings.subjects, settings.keys)
    await sdk.start()
    await sdk.warm_up(TENANTS)
    seen: dict[str, int] = {t: sdk.cached(t).version for t in TENANTS}  # type: ignore[union-attr]
    backwards: list[tuple[str, int, int]] = []
    pools = RecordingPools()
    reconciler = reconciler_for(
        settings, ConfigReader(redis, settings.keys), pools, 0.2, log=event_log
    )

    def run(stop: asyncio.Event) -> Coroutine[Any, Any, None]:
        return reconciler.run(nc, settings.subjects, LoopHandle("pools", stop))

    async def read_continuously(stop: asyncio.Event) -> None:
        while not stop.is_set():
            for tenant in TENANTS:
                config = await sdk.get_config(tenant, allow_suspended=True)
                if config.version < seen[tenant]:
                    backwards.append((tenant, seen[tenant], config.version))
                seen[tenant] = max(seen[tenant], config.version)
            await asyncio.sleep(0.01)

    async with in_background(run), in_background(read_continuously):
        await eventually(lambda: _running(pools, "vip"), timeout=5)

        # When Redis loses everything
        flushed = time.monotonic()
        await redis.flushall()

        # Then both read models are back as they were, within 10 s
        async def restored() -> bool:
            return await dump(redis, settings.namespace) == before

        await eventually(restored, timeout=10, interval=0.1)
        healed_s = time.monotonic() - flushed
        await asyncio.sleep(0.5)  # the reconciler's passes after the rebuild

    await sdk.close()
    # And no reader went backwards, and the dedicated pool was never deleted
    assert backwards == []
    assert pools.deleted == []
    assert "vip" in pools.running
    report("R9", keys=len(before), healed_s=round(healed_s, 2), tenants=len(TENANTS))


async def _running(pools: RecordingPools, name: str) -> bool:
    return name in pools.running
