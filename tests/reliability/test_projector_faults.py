"""The projector under faults: SIGKILL at random points (R1), NATS and Redis restarts (R2).

Short sizes by default; `pytest tests/reliability --long` runs the full ones
(R1: 100k events; 20 kills either way, on a single Redis and on a cluster).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts import EVENTS
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tests.conftest import redis_client
from tests.support.counting import digest
from tests.support.events import config_set
from tests.support.reporting import report
from tests.support.running import eventually, running
from tests.support.stores import redis_harness, redis_projector

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def start_projector_process(settings: Settings) -> subprocess.Popen[bytes]:
    args = [settings.nats_url, settings.redis_url, settings.namespace]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.projector_process", *args],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if kill:
        process.kill()
    else:
        process.terminate()
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


async def checkpoint(redis: aioredis.Redis, settings: Settings) -> int:
    return int(await redis.get(settings.keys.checkpoint("counting")) or 0)


@pytest.fixture(params=["redis", "redis-cluster"])
async def r1_redis(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[tuple[aioredis.Redis, Settings]]:
    """The read model's Redis for R1: the single one, or a 3-master cluster."""
    if request.param == "redis-cluster":
        settings = settings.model_copy(update={"redis_url": request.getfixturevalue("cluster_url")})
    async with redis_client(settings) as client:
        yield client, settings


async def test_projector_killed_at_random_points_converges_to_a_fresh_replay(
    nc: NATS, r1_redis: tuple[aioredis.Redis, Settings], event_log: EventLog, long: bool
) -> None:
    redis, settings = r1_redis
    # Given events flowing in while a projector process is killed with SIGKILL, again and again
    total, kills = (100_000, 20) if long else (20_000, 20)
    rng = random.Random(7)
    started = time.monotonic()
    tenants = [f"t{i}" for i in range(50)]
    writer = asyncio.create_task(
        event_log.append_many([config_set(rng.choice(tenants), n=i) for i in range(total)])
    )
    for _ in range(kills):
        process = start_projector_process(settings)
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        stop_process(process, kill=True)
    await writer
    # When a last projector runs to the head
    process = start_projector_process(settings)
    try:
        await eventually(lambda: _at(redis, settings, total), timeout=60)
    finally:
        stop_process(process)
    # Then its read model equals a fresh in-process replay: nothing lost, nothing doubled
    harness = redis_harness(nc, redis, settings)
    replay = harness.projector("replay")
    async with running(replay):
        await replay.wait_for(total, timeout=60)
    live_digest, state = await harness.digest()
    applied = sum(int(v["events"]) for v in state.values())
    report("R1", events=total, kills=kills, applied=applied, seconds=time.monotonic() - started)
    assert applied == total
    assert live_digest == (await harness.digest("replay"))[0]


async def _at(redis: aioredis.Redis, settings: Settings, seq: int) -> bool:
    return await checkpoint(redis, settings) >= seq


@pytest.fixture
def own_servers(tmp_path: Path) -> Iterator[tuple[embedded.ServerProcess, embedded.ServerProcess]]:
    nats = embedded.nats_server(tmp_path / "nats").start()
    redis = embedded.redis_server(tmp_path / "redis", persist=True).start()
    yield nats, redis
    redis.stop()
    nats.stop()


@pytest.fixture
def own_settings(
    own_servers: tuple[embedded.ServerProcess, embedded.ServerProcess], namespace: str
) -> Settings:
    nats, redis = own_servers
    return Settings(nats_url=nats.url, redis_url=redis.url, namespace=namespace)


async def test_projector_catches_up_by_itself_after_nats_then_redis_restart(
    own_servers: tuple[embedded.ServerProcess, embedded.ServerProcess], own_settings: Settings
) -> None:
    nats_server, redis_server = own_servers
    nc = await connect_nats(own_settings, "fault-test")
    redis = aioredis.Redis.from_url(own_settings.redis_url)
    log = EventLog(nc.jetstream(), own_settings.subjects, EVENTS)
    await log.ensure_streams()
    projector = redis_projector(nc, redis, own_settings, idle_check_s=0.2)
    async with running(projector):
        first = await log.append_many([config_set("acme", n=i) for i in range(100)])
        await projector.wait_for(first[-1].seq)
        # When NATS restarts mid-stream
        nats_server.stop()
        nats_server.start()
        await eventually(_connected(nc))
        second = await log.append_many([config_set("acme", n=i) for i in range(100)])
        await projector.wait_for(second[-1].seq, timeout=20)
        # ... and then Redis restarts mid-stream
        redis_server.stop()
        redis_server.start()
        third = await log.append_many([config_set("acme", n=i) for i in range(100)])
        await projector.wait_for(third[-1].seq, timeout=20)
    # Then nothing was lost or doubled
    _, state = await digest(redis, own_settings.namespace)
    assert state["acme"]["events"] == "300"
    await redis.aclose()
    await nc.close()


def _connected(nc: object):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(nc.is_connected)  # type: ignore[attr-defined]

    return check
