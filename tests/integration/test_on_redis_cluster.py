"""The config and routing read models, their readers and the CLI on a Redis Cluster.

Every fixture of these tests (the services, the command client, `redis`) runs
with the read models on the shared 3-master cluster instead of the single Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
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
from tenantplane.services.runtime.errors import InvalidTransition, StoreUnavailable
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.projector import Projector
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores import redis_cluster
from tenantplane.services.runtime.stores.redis import RedisStore
from tenantplane.services.runtime.stores.redis_cluster import SWITCHED_MS, SlotSwitch
from tests.support.cli import tenantctl
from tests.support.counting import CountingProjection
from tests.support.events import config_set
from tests.support.running import running
from tests.support.stores import Harness, redis_harness

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


async def rebuilt_beside(
    settings: Settings, nc: NATS, redis: aioredis.Redis, event_log: EventLog
) -> tuple[Harness, RedisStore, RedisStore]:
    """A live counting read model of 600 events over 30 tenants, with t0's count gone
    wrong and a stray tenant, and the same read model rebuilt beside it: the harness,
    the live store and the rebuilt one."""
    harness = redis_harness(nc, redis, settings)
    first = await event_log.append_many([config_set(f"t{i % 30}", n=i) for i in range(600)])
    async with running(harness.projector()) as live:
        await live.wait_for(first[-1].seq)
    root = settings.namespace
    await redis.hset(f"{root}:count:{{t0}}", "events", 999)
    await redis.hset(f"{root}:count:{{ghost}}", "events", 1)
    shadow = await replayed_beside(settings, nc, redis, first[-1].seq)
    return harness, counting_store(settings, redis), shadow


async def replayed_beside(
    settings: Settings, nc: NATS, redis: aioredis.Redis, upto: int
) -> RedisStore:
    """The counting read model replayed up to `upto` under a shadow root: its store."""
    shadow_root = f"{settings.namespace}~rebuild"
    shadow = RedisStore(redis, Keys(shadow_root), "counting", [f"{shadow_root}:count:*"])
    replay = Projector(
        CountingProjection(settings.subjects, shadow_root), shadow, nc,
        subjects=settings.subjects, registry=EVENTS,
    )  # fmt: skip
    async with running(replay):
        await replay.wait_for(upto)
    return shadow


def counting_store(settings: Settings, redis: aioredis.Redis) -> RedisStore:
    """The live counting read model's store."""
    return RedisStore(redis, settings.keys, "counting", [f"{settings.namespace}:count:*"])


async def goes_on_counting_once(
    settings: Settings,
    redis: aioredis.Redis,
    event_log: EventLog,
    harness: Harness,
    before: int = 600,
) -> dict[str, dict[str, str]]:
    """After a switch of `rebuilt_beside` (and `before` events in all), 300 more
    events: the projector counts each once, the stray is gone and so is the rebuilt
    copy; the counts."""
    more = await event_log.append_many([config_set(f"t{i % 30}", n=i) for i in range(300)])
    async with running(harness.projector()) as live:
        await live.wait_for(more[-1].seq, timeout=30)
    assert await SlotSwitch(RedisStore(redis, settings.keys, "counting")).fence() is None
    _, state = await harness.digest()
    assert "ghost" not in state
    assert sum(int(v["events"]) for v in state.values()) == before + 300
    assert state["t0"]["events"] == "30"
    assert [k async for k in redis.scan_iter(match=f"{settings.namespace}~rebuild*")] == []
    # (each tag's marker outlives the switch, for a late process finishing it)
    assert 0 < await redis.pttl(settings.keys.switched("counting", "t0")) <= SWITCHED_MS
    return state


async def test_a_switch_cut_short_is_finished_by_the_next_projector(
    settings: Settings,
    nc: NATS,
    redis: aioredis.Redis,
    event_log: EventLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a read model rebuilt beside the live one
    harness, store, shadow = await rebuilt_beside(settings, nc, redis, event_log)
    # When its switch dies after some tenants were switched in (its heartbeat stops)
    switch = SlotSwitch(store)
    monkeypatch.setattr(redis_cluster, "SWITCH_CHUNK", 1)
    beats = 0
    beat = switch._beat

    async def dies_on_the_fifth_beat(fence: str) -> None:
        nonlocal beats
        beats += 1
        if beats == 5:
            raise RedisConnectionError("the switching process died")
        await beat(fence)

    fence = await switch.start(shadow)
    monkeypatch.setattr(switch, "_beat", dies_on_the_fifth_beat)
    with pytest.raises(RedisConnectionError):
        await switch.finish(fence)
    assert await switch.fence() is not None
    assert [k async for k in redis.scan_iter(match=f"{shadow._root}:count:*")] != []  # midway
    # ... and a projector that starts while it is alive waits for it
    with pytest.raises(StoreUnavailable, match="being switched in"):
        await store.load()
    await redis.delete(settings.keys.switching_alive("counting"))
    # Then the next projector finishes the switch and goes on, counting each event once
    await goes_on_counting_once(settings, redis, event_log, harness)


@pytest.mark.parametrize("stalls_at", [1, 2], ids=["before-its-scan", "after-a-round"])
async def test_a_switch_taken_over_from_a_stalled_process_loses_no_tenant(
    settings: Settings,
    nc: NATS,
    redis: aioredis.Redis,
    event_log: EventLog,
    monkeypatch: pytest.MonkeyPatch,
    stalls_at: int,
) -> None:
    # Given a read model rebuilt beside the live one, switched in four tags a round
    harness, store, shadow = await rebuilt_beside(settings, nc, redis, event_log)
    monkeypatch.setattr(redis_cluster, "SWITCH_CHUNK", 4)
    stalled, other = SlotSwitch(store), SlotSwitch(store)
    fence = await stalled.start(shadow)
    beats = 0
    beat = stalled._beat

    async def stalls(fence: str) -> None:
        nonlocal beats
        beats += 1
        await beat(fence)
        if beats == stalls_at:
            # When its process stalls past its heartbeat, another finishes the switch
            # and the projector goes on (a new tenant appears) before it wakes
            await redis.delete(settings.keys.switching_alive("counting"))
            assert await other.finish(fence) > 0
            new = await event_log.append_many([config_set("newbie", n=i) for i in range(5)])
            async with running(harness.projector()) as live:
                await live.wait_for(new[-1].seq, timeout=30)

    monkeypatch.setattr(stalled, "_beat", stalls)
    # Then the stalled process swaps nothing again, takes no tenant for a stray, and
    # stops at its next heartbeat
    with pytest.raises(InvalidTransition, match="finished by another process"):
        await stalled.finish(fence)
    state = await goes_on_counting_once(settings, redis, event_log, harness, before=605)
    assert state["newbie"]["events"] == "5"


async def test_a_redrive_after_a_rebuild_was_switched_in_counts_nothing_twice(
    settings: Settings, nc: NATS, redis: aioredis.Redis, event_log: EventLog
) -> None:
    # Given acme's events parked behind one that failed, and a fixed projector idle
    harness = redis_harness(nc, redis, settings)
    last = await harness.parked(event_log)
    async with running(harness.projector()) as fixed:
        await fixed.wait_for(last)
        assert fixed.position.blocked  # it holds acme as blocked
        # When a rebuilt read model (which applied acme's events) is switched in
        shadow = await replayed_beside(settings, nc, redis, last)
        await counting_store(settings, redis).replace_with(shadow)
        # Then a re-drive through the idle projector is refused, and it reloads: its
        # next events apply on the switched position, each counted once
        with pytest.raises(InvalidTransition, match="run the re-drive again"):
            await fixed.redrive("acme")
        after = await event_log.append(config_set("acme", n=3))
        await fixed.wait_for(after.seq, timeout=30)
        assert fixed.position.blocked == {}
    _, state = await harness.digest()
    assert state["acme"]["events"] == "3"


async def test_a_redrive_cut_short_before_its_checkpoint_applies_each_event_once(
    settings: Settings,
    nc: NATS,
    redis: aioredis.Redis,
    event_log: EventLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a tenant whose events were parked behind one that failed
    harness = redis_harness(nc, redis, settings)
    last = await harness.parked(event_log)
    async with running(harness.projector()) as fixed:
        await fixed.wait_for(last)
        # When a re-drive dies after its writes, before it unblocks the subject
        assert isinstance(fixed.store, RedisStore)
        slots = fixed.store._slots
        assert slots is not None
        monkeypatch.setattr(
            slots, "commit_position", fails_with(RedisConnectionError("the re-drive died"))
        )
        with pytest.raises(StoreUnavailable):
            await fixed.redrive("acme")
        monkeypatch.undo()
        # Then the re-drive run again counts each parked event once
        done = await fixed.redrive("acme")
        after = await event_log.append(config_set("acme", n=3))
        await fixed.wait_for(after.seq)
    assert (done.applied, done.still_parked) == (2, 0)
    _, state = await harness.digest()
    assert state["acme"] == {"events": "3", "last_seq": "3", "seq_sum": "6"}
    assert await redis.exists(settings.keys.redriven("counting", "acme")) == 0


def fails_with(error: Exception) -> Callable[..., Awaitable[Any]]:
    async def fails(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fails


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
