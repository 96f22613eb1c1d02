"""R3: a 3-node NATS cluster on loopback, streams at 3 replicas, one node killed during writes.

Commands go through the real config service; a client retries a command that
got no answer with the same idempotency key, as `CommandClient` users do. The
stream leader is killed with SIGKILL part-way. Expected: every acknowledged
command's event is in the log exactly once, the service keeps serving (every
command is acknowledged in the end), and the read model shows every tenant.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantplane.contracts import EVENTS
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config import service as config_service
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.app import ensure_streams
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.errors import Unavailable
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tests.support.reporting import report
from tests.support.running import eventually
from tests.support.services import running_service

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[embedded.NatsCluster]:
    nodes = embedded.nats_cluster(tmp_path / "cluster").start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
async def cluster_settings(cluster: embedded.NatsCluster, settings: Settings) -> Settings:
    clustered = settings.model_copy(update={"nats_url": cluster.url, "replicas": 3})
    nc = await connect_nats(clustered, "setup")
    try:
        log = EventLog(nc.jetstream(), clustered.subjects, EVENTS)
        # The cluster elects its JetStream leader in the first moments; this waits for it.
        await ensure_streams(log, clustered)
        info = await nc.jetstream().stream_info(clustered.subjects.control_stream)
        assert info.config.num_replicas == 3
    finally:
        await nc.close()
    return clustered


async def test_losing_a_node_during_writes_loses_no_acknowledged_event(
    cluster: embedded.NatsCluster, cluster_settings: Settings, long: bool
) -> None:
    settings = cluster_settings
    total = 5_000 if long else 600
    probe = settings.subjects.command("config", RegisterTenant.name)
    nc = await connect_nats(settings, "r3-client")
    client = CommandClient(nc, settings.subjects, timeout=2.0)
    acked: set[str] = set()
    retries = 0
    started = time.monotonic()

    async def register(i: int) -> None:
        nonlocal retries
        command = RegisterTenant(
            tenant_id=f"t{i}", display_name=f"T{i}", actor="r3@test", idempotency_key=f"k{i}"
        )
        for _ in range(60):
            try:
                await client.send(command)
                acked.add(command.tenant_id)
                return
            except Unavailable:
                retries += 1
                await asyncio.sleep(0.2)
        raise AssertionError(f"{command.tenant_id} was never acknowledged")

    async def writer(ids: range) -> None:
        for i in ids:
            await register(i)

    try:
        async with running_service(settings, config_service.run, probe):
            writers = [asyncio.create_task(writer(range(w, total, 8))) for w in range(8)]
            await eventually(lambda: _count_at_least(acked, total // 3), timeout=60)
            info = await nc.jetstream().stream_info(settings.subjects.control_stream)
            leader = info.cluster.leader if info.cluster else None
            assert leader is not None
            cluster.node(leader).kill()
            killed_at = len(acked)
            await asyncio.gather(*writers)

            # Every command was acknowledged, and each one's event is in the log once.
            assert len(acked) == total
            log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
            registered: list[str] = []

            async def read_back() -> bool:  # the stream may still be settling its new leader
                try:
                    registered[:] = [
                        e.envelope.tenant_id
                        async for e in log.read(settings.subjects.all_events())
                        if e.envelope.type == "tenant.registered"
                    ]
                except Unavailable:
                    return False
                return True

            await eventually(read_back, timeout=30, interval=0.5)
            seen = Counter(registered)
            lost = acked - set(seen)
            doubled = [t for t, n in seen.items() if n > 1]
            assert not lost, f"{len(lost)} acknowledged events lost"
            assert not doubled, f"{len(doubled)} events appended twice"

            # The service kept projecting: the read model shows every tenant.
            redis = connect_redis(settings)
            try:
                reader = ConfigReader(redis, settings.keys)

                async def all_projected() -> bool:
                    return len(await reader.tenants()) == total

                await eventually(all_projected, timeout=30)
            finally:
                await redis.aclose()
    finally:
        await nc.close()
    report(
        "R3", events=total, killed_node=leader, killed_after=killed_at, client_retries=retries,
        lost=len(lost), doubled=len(doubled), seconds=time.monotonic() - started,
    )  # fmt: skip


async def _count_at_least(values: set[str], n: int) -> bool:
    return len(values) >= n
