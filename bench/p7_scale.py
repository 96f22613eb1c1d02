"""P7: scale. Many tenants with 20 config keys each: rebuild time, Redis bytes, SDK warm-up.

Fills a fresh log with N tenants (a registration and one change of 20 keys
each), rebuilds the config read model from it, measures the Redis memory the
read model takes per tenant, and how long an SDK client takes to load every
tenant into its cache. Then the same rebuild in 2 tenant partitions, each in a
process of its own (`tenantctl projection rebuild config --partitions 2`),
beside the one-process rebuild of the same run. Then the same two rebuilds with
the read model on a 3-master Redis Cluster (a replica each, on loopback), and
its bytes per tenant. The target (the scale-out issue): 100,000 tenants
rebuilt in <= 10 s with partitions.

    python -m bench.p7_scale            # 100,000 tenants
    python -m bench.p7_scale --quick    # 10,000 tenants
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row, Verdict, arguments, finish, local_servers, progress, table
from bench.logfill import fill, rebuild_config
from tenantplane.contracts import EVENTS
from tenantplane.services.cli.context import run_loop
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.app import ensure_streams
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings

KEYS = 20


def partitioned_rebuild(settings: Settings, partitions: int) -> float:
    """Seconds `tenantctl projection rebuild config --partitions N` took, as it reports."""
    done = subprocess.run(
        [sys.executable, "-m", "tenantplane.services.cli", "projection", "rebuild", "config",
         "--partitions", str(partitions), "-o", "json"],
        env={**os.environ, **settings.to_env()}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(json.loads(done.stdout)["seconds"])


async def on_cluster(settings: Settings, tenants: int) -> dict[str, float]:
    """The rebuilds of the log already filled, with the read model on a Redis Cluster."""
    with tempfile.TemporaryDirectory(prefix="tp-bench-cluster-") as tmp:
        cluster = embedded.redis_cluster(Path(tmp)).start()
        try:
            on = settings.model_copy(update={"redis_url": cluster.url})
            nc = await connect_nats(on, "bench-p7-cluster")
            redis = connect_redis(on)
            try:
                log = EventLog(nc.jetstream(), on.subjects, EVENTS)
                before = _used_memory(cluster.master_ports())
                progress("rebuild with the read model on a 3-master Redis Cluster")
                result = await rebuild_config(nc, redis, log, on)
                after = _used_memory(cluster.master_ports())
            finally:
                await redis.aclose()
                await nc.close()
            progress("rebuild on the cluster in 2 tenant partitions, a process each")
            split = partitioned_rebuild(on, 2)
        finally:
            cluster.stop()
    return {
        "cluster_rebuild_s": result.seconds,
        "cluster_split_s": split,
        "cluster_bytes_per_tenant": (after - before) / tenants,
    }


def _used_memory(ports: list[int]) -> int:
    """used_memory summed over the masters (each replica holds a copy besides)."""
    import redis as sync_redis

    total = 0
    for port in ports:
        with sync_redis.Redis(port=port) as client:
            total += int(client.info("memory")["used_memory"])
    return total


async def measure(settings: Settings, tenants: int) -> dict[str, float]:
    nc = await connect_nats(settings, "bench-p7")
    redis = connect_redis(settings)
    try:
        log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
        await ensure_streams(log, settings)
        events = await fill(log, tenants, sets=1, keys=KEYS)
        before = int((await redis.info("memory"))["used_memory"])
        progress(f"rebuild of the config projection ({events:,} events)")
        result = await rebuild_config(nc, redis, log, settings)
        after = int((await redis.info("memory"))["used_memory"])
        sample = [settings.keys.tenant_meta("t0"), settings.keys.tenant_config("t0")]
        one = sum([int(await redis.memory_usage(key) or 0) for key in sample])
        progress(f"SDK warm-up of {tenants:,} tenants")
        sdk = await AsyncConfigClient.connect(settings)
        try:
            start = time.perf_counter()
            loaded = await sdk.warm_up()
            warm_up = time.perf_counter() - start
        finally:
            await sdk.close()
        assert loaded == tenants, f"warmed up {loaded} of {tenants}"
        progress("rebuild in 2 tenant partitions, a process each")
        split = partitioned_rebuild(settings, 2)
        return {
            **await on_cluster(settings, tenants),
            "split_s": split,
            "events": events,
            "rebuild_s": result.seconds,
            "rebuild_rate": result.events / result.seconds,
            "bytes_per_tenant": (after - before) / tenants,
            "one_tenant_bytes": one,
            "warm_up_s": warm_up,
            "warm_up_rate": tenants / warm_up,
        }
    finally:
        await redis.aclose()
        await nc.close()


def main() -> None:
    options = arguments(__doc__ or "")
    tenants = 10_000 if options.quick else 100_000
    with local_servers() as settings:
        f = run_loop(measure(settings, tenants))
    rows = [
        Row("rebuild", {"seconds": f["rebuild_s"], "per s": f["rebuild_rate"]},
            f"{f['events']:,.0f} events"),
        Row("rebuild, 2 tenant partitions (2 processes)",
            {"seconds": f["split_s"], "per s": f["events"] / f["split_s"]},
            f"{f['rebuild_s'] / f['split_s']:.2f}x the one-process rebuild"),
        Row("rebuild, read model on a 3-master Redis Cluster",
            {"seconds": f["cluster_rebuild_s"], "per s": f["events"] / f["cluster_rebuild_s"]},
            f"{f['cluster_rebuild_s'] / f['rebuild_s']:.2f}x the single Redis's time"),
        Row("rebuild on the cluster, 2 tenant partitions",
            {"seconds": f["cluster_split_s"], "per s": f["events"] / f["cluster_split_s"]},
            f"{f['cluster_rebuild_s'] / f['cluster_split_s']:.2f}x the one-process one"),
        Row("SDK warm-up (all tenants)", {"seconds": f["warm_up_s"], "per s": f["warm_up_rate"]},
            "tenants loaded into the cache"),
    ]  # fmt: skip
    verdicts = [
        Verdict("P7", f"rebuild, {tenants:,} tenants x {KEYS} keys", f["rebuild_s"], "s",
                "reported", None),
        Verdict("P7", f"rebuild in 2 partitions, {tenants:,} tenants", f["split_s"], "s",
                "<= 10 s", f["split_s"] <= 10, f["rebuild_s"], f["rebuild_s"] / f["split_s"]),
        Verdict("P7", "Redis bytes per tenant (used_memory)", f["bytes_per_tenant"], "B",
                "reported", None),
        Verdict("P7", "Redis bytes of one tenant (MEMORY USAGE)", f["one_tenant_bytes"], "B",
                "reported", None),
        Verdict("P7", f"rebuild in 2 partitions on a 3-master cluster, {tenants:,} tenants",
                f["cluster_split_s"], "s", "<= 10 s", f["cluster_split_s"] <= 10),
        Verdict("P7", "Redis Cluster bytes per tenant (used_memory, masters)",
                f["cluster_bytes_per_tenant"], "B", "reported", None),
        Verdict("P7", f"SDK warm-up, {tenants:,} tenants", f["warm_up_s"], "s", "reported", None),
    ]  # fmt: skip
    finish(options, [table(f"P7: {tenants:,} tenants x {KEYS} config keys", rows)], verdicts)


if __name__ == "__main__":
    main()
