"""A real Redis Cluster (3 masters, a replica each) and tenantplane's client of it.

The cluster the tests start, the `redis+cluster://` setting, failover under a
running projector, and the job queue's own Redis. (The projector's contract
tests and R1 run on a cluster too: the `harness` fixture and R1's `r1_redis`.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import CrossSlotTransactionError, RedisError

from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.connections import connect_redis, packed_in_c
from tenantplane.services.runtime.errors import InvalidRequest
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.localstate import resolve_jobs_redis_url
from tenantplane.services.runtime.settings import Settings
from tests import servers as test_servers
from tests.support.events import config_set
from tests.support.running import eventually, running
from tests.support.stores import redis_harness

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[embedded.RedisClusterProcesses]:
    with test_servers.redis_cluster(tmp_path / "cluster") as found:
        if isinstance(found, str):
            pytest.fail("these tests start and kill the cluster's nodes: use the local backend")
        yield found


async def test_the_cluster_serves_every_slot_with_a_replica_per_master(
    cluster: embedded.RedisClusterProcesses, settings: Settings
) -> None:
    client = connect_redis(settings.model_copy(update={"redis_url": cluster.url}))
    assert isinstance(client, RedisCluster)
    try:
        info = await client.cluster_info()
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16_384
        assert int(info["cluster_known_nodes"]) == 6
        assert len(cluster.master_ports()) == 3
        # Keys of many slots, written and read through the one client
        for i in range(200):
            await client.set(f"k{i}", i)
        assert sum([int(await client.get(f"k{i}") or 0) for i in range(200)]) == sum(range(200))
        # Every node the client found packs commands in C, and values read back as sent
        assert {node.connection_class for node in client.get_nodes()} == {packed_in_c(Connection)}
        await client.hset("h", mapping={"text": "été", "int": 2**63 - 1, "float": 0.1})
        assert await client.hgetall("h") == {
            b"text": "été".encode(),
            b"int": b"9223372036854775807",
            b"float": b"0.1",
        }
        # A transaction over keys of two slots is refused by the cluster itself
        async with client.pipeline(transaction=True) as pipe:
            pipe.set("a", 1)
            pipe.set("b", 2)
            with pytest.raises(CrossSlotTransactionError):
                await pipe.execute()
    finally:
        await client.aclose()


async def test_a_killed_master_is_replaced_by_its_replica_with_the_replicated_writes(
    cluster: embedded.RedisClusterProcesses, settings: Settings
) -> None:
    client = connect_redis(settings.model_copy(update={"redis_url": cluster.url}))
    try:
        for i in range(100):
            await client.set(f"k{i}", i)
        # Every master has its writes on its replica before the kill
        await eventually(lambda: asyncio.to_thread(cluster.replicated), timeout=10)
        victim = cluster.master_ports()[0]
        next(n for n in cluster.nodes if n.port == victim).kill()

        async def promoted() -> bool:
            return len(await asyncio.to_thread(cluster.master_ports)) == 3

        await eventually(promoted, timeout=20, interval=0.2)

        async def readable() -> bool:
            try:
                return [int(await client.get(f"k{i}") or -1) for i in range(100)] == list(
                    range(100)
                )
            except RedisError:
                return False

        await eventually(readable, timeout=20, interval=0.2)
        assert victim not in cluster.master_ports()
    finally:
        await client.aclose()


async def test_a_master_killed_during_projection_loses_and_doubles_nothing(
    cluster: embedded.RedisClusterProcesses, settings: Settings, nc: NATS, event_log: EventLog
) -> None:
    # Given a projector counting events into the cluster while they flow in
    on_cluster = settings.model_copy(update={"redis_url": cluster.url})
    client = connect_redis(on_cluster)
    harness = redis_harness(nc, client, on_cluster)
    tenants = [f"t{i}" for i in range(40)]
    total = 6_000
    events = [config_set(tenants[i % len(tenants)], n=i) for i in range(total)]
    # (a replica still in its first sync may not take over: wait until each is in sync)
    await eventually(lambda: asyncio.to_thread(cluster.replicated), timeout=10)
    try:
        async with running(harness.projector(idle_check_s=0.2)) as projector:
            first = await event_log.append_many(events[: total // 2])
            await projector.wait_for(first[-1].seq // 2, timeout=30)
            # When the master of the projection's checkpoint dies mid-stream
            victim = cluster.port_of(settings.keys.checkpoint("counting"))
            node = next(n for n in cluster.nodes if n.port == victim)
            node.kill()
            rest = await event_log.append_many(events[total // 2 :])
            # Then its replica takes over, but with no replica of its own it takes no
            # commit (a write only it holds would be one crash from loss) ...
            await eventually(
                lambda: asyncio.to_thread(lambda: len(cluster.master_ports()) == 3),
                timeout=20,
                interval=0.2,
            )
            await asyncio.sleep(3)
            assert projector.position.checkpoint < rest[-1].seq
            # ... until the dead node is back, as its replica: the projector goes on
            await asyncio.to_thread(node.start)
            await projector.wait_for(rest[-1].seq, timeout=60)
        assert victim not in cluster.master_ports()
        # ... with every event counted once, as a fresh replay counts them
        replay = harness.projector("replay")
        async with running(replay):
            await replay.wait_for(rest[-1].seq, timeout=60)
        live, state = await harness.digest()
        assert sum(int(v["events"]) for v in state.values()) == total
        assert live == (await harness.digest("replay"))[0]
    finally:
        await client.aclose()


def test_the_job_queue_needs_its_own_redis_beside_a_cluster(settings: Settings) -> None:
    on_cluster = settings.model_copy(update={"redis_url": "redis+cluster://127.0.0.1:7000"})
    with pytest.raises(InvalidRequest, match="TENANTPLANE_JOBS_REDIS_URL"):
        resolve_jobs_redis_url(on_cluster)
    single = on_cluster.model_copy(update={"jobs_redis_url": "redis://127.0.0.1:6390"})
    assert resolve_jobs_redis_url(single) == "redis://127.0.0.1:6390"
    assert resolve_jobs_redis_url(settings) == settings.redis_url
