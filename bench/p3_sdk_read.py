"""P3: a cached config read through the SDK, on one thread.

Reads one tenant's config (20 keys) with the threaded `ConfigClient` and takes a
typed value from it, in a loop on one thread; the baseline is a Redis HGETALL of
the same hash with redis-py on the same thread.

    python -m bench.p3_sdk_read            # 2,000,000 reads
    python -m bench.p3_sdk_read --quick    # 300,000 reads

Target (TARGETS.md): >= 1,000,000 reads/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import redis

from bench.common import (
    Row,
    Verdict,
    arguments,
    finish,
    local_servers,
    progress,
    table,
    tenantctl_process,
    wait_serving,
)
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.sdk import ConfigClient
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings

KEYS = {f"app.key{i}": i for i in range(19)} | {"rate_limit": 100}


async def seed(settings: Settings, tenant: str) -> None:
    """One tenant with 20 config keys in the read model."""
    nc = await connect_nats(settings, "bench")
    redis_client = connect_redis(settings)
    try:
        client = CommandClient(nc, settings.subjects)
        await wait_serving(nc, settings.subjects.command("config", RegisterTenant.name))
        await client.send(RegisterTenant(tenant_id=tenant, display_name=tenant, actor="bench"))
        reply = await client.send(SetConfig(tenant_id=tenant, values=KEYS, actor="bench"))
        assert reply.seq is not None
        await wait_applied(
            nc, redis_client, settings.subjects, settings.keys, "config", reply.seq, 10
        )
    finally:
        await redis_client.aclose()
        await nc.close()


def rate(n: int, read: Callable[[], object]) -> float:
    """Calls per second of `read` over `n` calls, after a warm-up of n/10."""
    for _ in range(n // 10):
        read()
    start = time.perf_counter()
    for _ in range(n):
        read()
    return n / (time.perf_counter() - start)


def main() -> None:
    options = arguments(__doc__ or "")
    n = 300_000 if options.quick else 2_000_000
    with local_servers() as settings, tenantctl_process(settings, "serve", "config"):
        asyncio.run(seed(settings, "acme"))
        sdk = ConfigClient(settings)
        try:
            progress(f"{n:,} SDK reads")
            cached = rate(n, lambda: sdk.get_config("acme"))
            typed = rate(n, lambda: sdk.get_config("acme").get_int("rate_limit"))
        finally:
            sdk.close()
        client = redis.Redis.from_url(settings.redis_url)
        key = settings.keys.tenant_config("acme")
        progress(f"{n // 20:,} Redis HGETALLs")
        hgetall = rate(n // 20, lambda: client.hgetall(key))
        client.close()
    rows = [
        Row("SDK get_config (cached)", {"reads/s": cached}),
        Row("SDK get_config + get_int", {"reads/s": typed}),
        Row("Redis HGETALL, same hash (baseline)", {"reads/s": hgetall}),
    ]
    verdicts = [
        Verdict("P3", "SDK cached read, one thread", cached, "reads/s", ">= 1,000,000/s",
                cached >= 1_000_000, hgetall, cached / hgetall),
        Verdict("P3", "SDK cached read + typed get", typed, "reads/s", ">= 1,000,000/s",
                typed >= 1_000_000, hgetall, typed / hgetall),
    ]  # fmt: skip
    finish(options, [table("P3: cached config reads, one thread", rows)], verdicts)


if __name__ == "__main__":
    main()
