"""The config and routing read models, their readers and the CLI on a Redis Cluster.

Every fixture of these tests (the services, the command client, `redis`) runs
with the read models on the shared 3-master cluster instead of the single Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

import tenantplane as tp
from examples.billing.events import BILLING
from examples.billing.invoices import invoices, issue, pay
from examples.billing.projections import balance_key
from examples.billing.service import balances_projector
from tenantplane.contracts import EVENTS, Keys
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.router.sdk import Resolver
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.projector import Projector
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores import redis_cluster
from tenantplane.services.runtime.stores.redis import RedisStore
from tenantplane.services.runtime.stores.redis_cluster import SlotSwitch
from tests.support.cli import tenantctl
from tests.support.counting import CountingProjection
from tests.support.events import config_set
from tests.support.running import running
from tests.support.stores import redis_harness

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings, cluster_url: str) -> Settings:
    return settings.model_copy(update={"redis_url": cluster_url})


async def test_config_and_routes_are_served_from_a_cluster(
    settings: Settings, router: None, redis: aioredis.Redis
) -> None:
    assert isinstance(redis, RedisCluster)

    async def run(*args: str) -> str:
        done = await asyncio.to_thread(tenantctl, settings, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # Given a tenant, its config and its routing, written through the CLI
    await run("tenant", "create", "acme", "--name", "Acme", "-r", "onboarding")
    await run("tenant", "create", "globex", "--name", "Globex", "-r", "onboarding")
    await run("config", "set", "acme", "rate_limit=50", "-r", "ticket 1")
    for version, port in (("v1", 9001), ("v2", 9002)):
        await run("route", "register", "billing", version, "--upstream", f"http://h:{port}")
    await run("route", "default", "billing", "v1")
    await run("route", "pin", "billing", "acme", "v2")
    # Then the CLI, the SDKs and the documented keys all read them from the cluster
    assert "50" in await run("config", "get", "acme", "rate_limit")
    listed = await run("tenant", "list")
    assert "acme" in listed
    assert "globex" in listed
    assert "v2" in await run("route", "resolve", "billing", "acme")
    assert await redis.hget(settings.keys.tenant_config("acme"), "rate_limit") == b"50"
    sdk = await AsyncConfigClient.connect(settings)
    resolver = await Resolver.connect(settings)
    try:
        assert (await sdk.get_config("acme")).get_int("rate_limit") == 50
        assert (await resolver.resolve("billing", "acme")).version == "v2"
        assert (await resolver.resolve("billing", "globex")).version == "v1"
    finally:
        await sdk.close()
        await resolver.close()


async def test_a_switch_cut_short_is_finished_by_the_next_projector(
    settings: Settings,
    nc: NATS,
    redis: aioredis.Redis,
    event_log: EventLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a live counting read model, one tenant's count gone wrong and a stray key
    harness = redis_harness(nc, redis, settings)
    tenants = [f"t{i}" for i in range(30)]
    first = await event_log.append_many([config_set(tenants[i % 30], n=i) for i in range(600)])
    async with running(harness.projector()) as live:
        await live.wait_for(first[-1].seq)
    root = settings.namespace
    await redis.hset(f"{root}:count:{{t0}}", "events", 999)
    await redis.hset(f"{root}:count:{{ghost}}", "events", 1)
    # ... and a read model rebuilt beside it
    shadow_root = f"{root}~rebuild"
    shadow = RedisStore(redis, Keys(shadow_root), "counting", [f"{shadow_root}:count:*"])
    replay = Projector(
        CountingProjection(settings.subjects, shadow_root), shadow, nc,
        subjects=settings.subjects, registry=EVENTS,
    )  # fmt: skip
    async with running(replay):
        await replay.wait_for(first[-1].seq)
    # When its switch dies after some tenants were switched in (its heartbeat stops)
    store = RedisStore(redis, settings.keys, "counting", [f"{root}:count:*"])
    switch = SlotSwitch(store)
    monkeypatch.setattr(redis_cluster, "SWITCH_CHUNK", 1)
    beats = 0
    beat = redis.set

    async def dies_on_the_fifth_beat(*args: Any, **kwargs: Any) -> Any:
        nonlocal beats
        beats += 1
        if beats == 5:
            raise RedisConnectionError("the switching process died")
        return await beat(*args, **kwargs)

    fence = await switch.start(shadow)
    monkeypatch.setattr(redis, "set", dies_on_the_fifth_beat)
    with pytest.raises(RedisConnectionError):
        await switch.finish(fence)
    monkeypatch.undo()
    assert await switch.fence() is not None
    assert [k async for k in redis.scan_iter(match=f"{shadow_root}:count:*")] != []  # midway
    await redis.delete(settings.keys.switching_alive("counting"))
    more = await event_log.append_many([config_set(tenants[i % 30], n=i) for i in range(300)])
    # Then the next projector finishes the switch and goes on, counting each event once
    async with running(harness.projector()) as live:
        await live.wait_for(more[-1].seq, timeout=30)
    assert await switch.fence() is None
    _, state = await harness.digest()
    assert "ghost" not in state
    assert sum(int(v["events"]) for v in state.values()) == 900
    assert state["t0"]["events"] == "30"
    assert [k async for k in redis.scan_iter(match=f"{shadow_root}*")] == []
    markers = settings.keys.switched_all("counting")
    assert [k async for k in redis.scan_iter(match=markers)] == []


async def test_a_domain_projection_is_kept_and_rebuilt_on_a_cluster(
    settings: Settings, nc: NATS, redis: aioredis.Redis
) -> None:
    # Given billing's balances projected into the cluster
    store = tp.DomainStore(nc.jetstream(), settings.subjects, BILLING)
    await store.ensure_stream()
    try:
        accounts = invoices(store)
        for tenant in ("acme", "beta"):
            for i in range(3):
                await accounts.execute(tenant, f"inv-{i}", issue("c1", 100 + i), actor="api")
            await accounts.execute(tenant, "inv-0", pay(100), actor="api")
        head = await store.log.head(store.stream)
        async with running(balances_projector(nc, redis, settings)) as balances:
            await balances.wait_for(head)
            live = {t: await redis.hgetall(balance_key(settings.keys, t)) for t in ("acme", "beta")}
            assert live["acme"][b"issued_cents"] == b"303"
            # When acme's balance is damaged, rebuilt alone, and then all is rebuilt whole
            await redis.hset(balance_key(settings.keys, "acme"), "issued_cents", 1)
            one = await balances.rebuild("acme")
            assert await redis.hgetall(balance_key(settings.keys, "acme")) == live["acme"]
            whole = await balances.rebuild()
            # Then both equal what the log says
            assert (one.how, whole.how.split(" (")[0]) == (
                "replayed in place",
                "built beside, swapped in",
            )
            for tenant, fields in live.items():
                assert await redis.hgetall(balance_key(settings.keys, tenant)) == fields
    finally:
        await nc.jetstream().delete_stream(store.stream)
