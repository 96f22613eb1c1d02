"""Replicas of a projection: one holds the lease and projects, the others stand by."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.leadership import TTL_S, Lease, ensure_leader_stream
from tenantplane.services.runtime.settings import Settings
from tests.support.events import config_set
from tests.support.running import eventually
from tests.support.stores import Harness, redis_harness

pytestmark = pytest.mark.integration


@pytest.fixture
async def replicas(nc: NATS, redis: aioredis.Redis, settings: Settings) -> Harness:
    await ensure_leader_stream(nc.jetstream(), settings.subjects)
    return redis_harness(nc, redis, settings)


async def test_a_lease_has_one_holder_at_a_time(nc: NATS, settings: Settings) -> None:
    await ensure_leader_stream(nc.jetstream(), settings.subjects)
    a, b = (Lease(nc.jetstream(), settings.subjects, "demo") for _ in range(2))
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.renew()
    assert await b.current() == a.holder
    # Released, it is the next one's at once
    await a.release()
    assert await b.acquire()
    assert not await a.renew()
    # And a holder restarted in the same place (same host, pid, place) takes it back
    restarted = Lease(nc.jetstream(), settings.subjects, "demo")
    restarted.holder = b.holder
    assert await restarted.acquire()
    assert not await b.renew()
    assert a.holder != b.holder


async def test_a_lease_outlives_its_stream_lost_with_a_nats_restart(
    nc: NATS, settings: Settings
) -> None:
    await ensure_leader_stream(nc.jetstream(), settings.subjects)
    lease = Lease(nc.jetstream(), settings.subjects, "demo")
    assert await lease.acquire()
    # When the in-memory stream of leases is gone (NATS restarted)
    await nc.jetstream().delete_stream(settings.subjects.leader_stream)
    # Then the holder finds it lost, and taking it again makes the stream anew
    assert not await lease.renew()
    assert await lease.acquire()
    assert await lease.current() == lease.holder


async def test_one_replica_projects_and_the_other_takes_over_when_it_stops(
    replicas: Harness, event_log: EventLog
) -> None:
    a, b = replicas.projector(lease=True), replicas.projector(lease=True)
    run_a = asyncio.create_task(a.run())
    await eventually(lambda: _holds(a))
    run_b = asyncio.create_task(b.run())
    try:
        first = await event_log.append_many([config_set("acme", n=i) for i in range(100)])
        await a.wait_for(first[-1].seq, 10)
        # Then only the holder applied anything; the other stands by, ready
        await eventually(lambda: _standing_by(b))
        assert b.stats.batches == 0
        assert await b.readiness(0)() is None
        # When the holder stops, the standby takes over at once and goes on
        await a.stop()
        await asyncio.wait_for(run_a, 10)
        second = await event_log.append_many([config_set("acme", n=i) for i in range(50)])
        await b.wait_for(second[-1].seq, TTL_S / 2)
        assert not b.stats.standby
    finally:
        await b.stop()
        await asyncio.wait_for(run_b, 10)
    # And every event took effect once
    _, state = await replicas.digest()
    assert int(state["acme"]["events"]) == 150


async def test_a_crashed_holders_lease_runs_out_and_a_standby_takes_over(
    replicas: Harness, event_log: EventLog
) -> None:
    a, b = replicas.projector(lease=True), replicas.projector(lease=True)
    run_a = asyncio.create_task(a.run())
    await eventually(lambda: _holds(a))
    run_b = asyncio.create_task(b.run())
    try:
        await eventually(lambda: _standing_by(b))
        # When the holder dies without a word (no release, no renewal)
        run_a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run_a
        appended = await event_log.append_many([config_set("acme", n=i) for i in range(30)])
        # Then the standby projects once the lease has run out
        await b.wait_for(appended[-1].seq, TTL_S * 3)
    finally:
        await b.stop()
        await asyncio.wait_for(run_b, 10)
    _, state = await replicas.digest()
    assert int(state["acme"]["events"]) == 30


async def _holds(projector: object) -> bool:
    lease = getattr(projector, "lease", None)
    return bool(lease is not None and lease.held)


async def _standing_by(projector: object) -> bool:
    return bool(getattr(projector, "stats", None) and projector.stats.standby)  # type: ignore[attr-defined]
