"""Rebuilding the config read model while readers and writers carry on."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts import EVENTS
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import OffboardTenant, RegisterTenant, SuspendTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.projections import PROJECTIONS
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.rebuild import RedisRebuild
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import read_hashes
from tests.support.cli import ACTOR, tenantctl
from tests.support.stores import read_models

pytestmark = pytest.mark.integration


@pytest.fixture(params=["redis", "redis-cluster"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Each test on a single Redis and on a 3-master cluster (switched in slot by slot)."""
    if request.param == "redis":
        return settings
    return settings.model_copy(update={"redis_url": request.getfixturevalue("cluster_url")})


TENANTS = [f"t{i:03d}" for i in range(100)]
KEYS = {f"k{i}": i for i in range(5)}


async def populate(client: CommandClient) -> int:
    limit = asyncio.Semaphore(20)

    async def one(tenant: str) -> int:
        async with limit:
            await client.send(RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR))
            reply = await client.send(SetConfig(tenant_id=tenant, values=KEYS, **ACTOR))
            return reply.seq or 0

    return max(await asyncio.gather(*(one(t) for t in TENANTS)))


async def test_readers_never_see_a_missing_or_partial_tenant_during_a_rebuild(
    settings: Settings,
    service: None,
    client: CommandClient,
    nc: NATS,
    redis: aioredis.Redis,
    event_log: EventLog,
) -> None:
    # Given 100 tenants with 5 keys each, projected
    last = await populate(client)
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", last)
    stop, reads, problems = asyncio.Event(), [0], []

    async def reader() -> None:
        rng = random.Random(1)
        while not stop.is_set():
            tenant = rng.choice(TENANTS)
            keys = [settings.keys.tenant_meta(tenant), settings.keys.tenant_config(tenant)]
            [(meta, config)] = await read_hashes(redis, [keys])  # one tenant at one moment
            count = await redis.scard(settings.keys.tenants())
            if not meta or len(config) < 5 or count != len(TENANTS):
                problems.append((tenant, len(meta), len(config), count))
            reads[0] += 1
            await asyncio.sleep(0)

    async def writer() -> None:
        for tenant in TENANTS[:30]:
            await client.send(SetConfig(tenant_id=tenant, values={"extra": True}, **ACTOR))

    # When the projection is rebuilt while a reader polls and a writer writes
    polling = asyncio.create_task(reader())
    writing = asyncio.create_task(writer())
    info = PROJECTIONS["config"]
    rebuild = RedisRebuild(
        lambda keys: info.make(settings.subjects, keys), nc, redis, event_log, settings.keys,
        EVENTS,
    )  # fmt: skip
    before = reads[0]
    result = await rebuild.run()
    during = reads[0] - before
    await writing
    stop.set()
    await polling
    # Then no read saw a missing or partial tenant, and writes after the switch still apply
    assert problems == []
    assert during > 10  # the reader did read while the rebuild ran
    assert result.events >= last
    after = await client.send(SetConfig(tenant_id="t099", values={"k0": 99}, **ACTOR))
    assert after.seq is not None
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", after.seq)
    reader_view = ConfigReader(redis, settings.keys)
    assert (await reader_view.config("t099"))["k0"] == 99
    assert (await reader_view.config("t000"))["extra"] is True
    assert [k async for k in redis.scan_iter(match=f"{settings.namespace}~rebuild*")] == []


async def test_cli_rebuild_reports_what_it_did(settings: Settings, client: CommandClient) -> None:
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    done = await asyncio.to_thread(
        tenantctl, settings, "projection", "rebuild", "config", "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["projection"] == "config"
    assert report["events"] == 1
    assert report["how"].startswith("built beside, swapped in")


async def test_rebuilds_of_two_projections_at_once_keep_to_their_own_shadow_keys(
    settings: Settings,
    service: None,
    client: CommandClient,
    nc: NATS,
    redis: aioredis.Redis,
    event_log: EventLog,
) -> None:
    # Given tenants with config, projected
    for tenant in TENANTS[:5]:
        await client.send(RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR))
        last = await client.send(SetConfig(tenant_id=tenant, values=KEYS, **ACTOR))
    assert last.seq is not None
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", last.seq)
    before = await read_models(redis, settings)

    # When config and router are rebuilt at the same time
    made = [PROJECTIONS[name].maker(settings.subjects) for name in ("config", "router")]
    rebuilds = [RedisRebuild(m, nc, redis, event_log, settings.keys, EVENTS) for m in made]
    await asyncio.gather(*(r.run() for r in rebuilds))

    # Then each used its own shadow root, and the read models are what they were
    assert [r.shadow_keys().root for r in rebuilds] == [
        f"{settings.namespace}~rebuild-config",
        f"{settings.namespace}~rebuild-router",
    ]
    assert await read_models(redis, settings) == before
    assert [k async for k in redis.scan_iter(match=f"{settings.namespace}~rebuild*")] == []


async def test_a_rebuild_in_tenant_partitions_gives_the_same_read_model(
    settings: Settings,
    client: CommandClient,
    nc: NATS,
    redis: aioredis.Redis,
    event_log: EventLog,
) -> None:
    # Given tenants with config, some offboarded, some suspended, and their read model
    last = await populate(client)
    for tenant in TENANTS[:5]:
        await client.send(OffboardTenant(tenant_id=tenant, **ACTOR))
    for tenant in TENANTS[5:10]:
        await client.send(SuspendTenant(tenant_id=tenant, **ACTOR))
    reply = await client.send(SetConfig(tenant_id=TENANTS[-1], values={"k0": -1}, **ACTOR))
    assert reply.seq is not None
    assert reply.seq > last
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", reply.seq)
    live = await read_models(redis, settings)
    # When it is rebuilt in 3 partitions by tenantctl, each in a process of its own
    done = await asyncio.to_thread(
        tenantctl, settings, "projection", "rebuild", "config", "--partitions", "3", "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    assert "in 3 partitions" in orjson.loads(done.stdout)["how"]
    # Then it is the same read model, key for key, at the same position
    assert await read_models(redis, settings) == live
    assert int(await redis.get(settings.keys.checkpoint("config")) or 0) >= reply.seq
    # And in 2 partitions in this process, too; the shadow keeps no partition position
    info = PROJECTIONS["config"]
    rebuild = RedisRebuild(
        lambda keys: info.make(settings.subjects, keys), nc, redis, event_log, settings.keys,
        EVENTS,
    )  # fmt: skip
    result = await rebuild.run(partitions=2)
    assert result.partitions == 2
    assert await read_models(redis, settings) == live
    assert [k async for k in redis.scan_iter(match=f"{settings.namespace}*part*")] == []


async def test_only_a_projection_written_per_tenant_is_rebuilt_in_partitions(
    settings: Settings, router: None
) -> None:
    done = await asyncio.to_thread(
        tenantctl, settings, "projection", "rebuild", "router", "--partitions", "2"
    )
    assert done.returncode == 1
    assert "router cannot be rebuilt in tenant partitions" in done.stderr


async def test_a_rebuild_the_projection_cannot_do_fails_by_its_name(
    settings: Settings, service: None
) -> None:
    # The config read model is rebuilt whole, not per tenant: the operator is told so
    done = await asyncio.to_thread(
        tenantctl, settings, "projection", "rebuild", "config", "--tenant", "acme"
    )
    assert done.returncode == 1  # refused, not a fault
    assert done.stderr.startswith("error: invalid_request: rebuild of config failed:")
    assert "which Redis keys are a tenant's" in done.stderr
