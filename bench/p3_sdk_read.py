"""P3: a cached config read through the SDK, on one thread.

Reads one tenant's config (20 keys) with the threaded `ConfigClient` and takes a
typed value from it, in a loop on one thread; the baseline is a Redis HGETALL of
the same hash with redis-py on the same thread.

Then the same reads with a config rollout active over 10% of 10,000 tenants
(2,000 with --quick), of a tenant the rollout reaches: the SDK reads what the
read model holds, so the cost must not change.

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
    onboard,
    progress,
    table,
    tenantctl_process,
)
from bench.logfill import fill
from tenantplane.contracts import EVENTS, cohorts
from tenantplane.contracts.rollouts import StartRollout
from tenantplane.services.config.sdk import ConfigClient
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings

KEYS = {f"app.key{i}": i for i in range(19)} | {"rate_limit": 100}


async def seed(settings: Settings, tenant: str) -> None:
    """One tenant with 20 config keys in the read model."""
    nc = await connect_nats(settings, "bench")
    redis_client = connect_redis(settings)
    try:
        seq = await onboard(nc, settings, [tenant], KEYS)
        await wait_applied(nc, redis_client, settings.subjects, settings.keys, "config", seq, 10)
    finally:
        await redis_client.aclose()
        await nc.close()


async def seed_rollout(settings: Settings, tenants: int) -> tuple[str, int, float]:
    """`tenants` tenants with 20 keys each, and a rollout of `rate_limit` over 10% of them;
    returns a tenant it reaches, how many joined, and the seconds the command took."""
    nc = await connect_nats(settings, "bench")
    redis_client = connect_redis(settings)
    try:
        log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
        await fill(log, tenants, 1, 20)
        client = CommandClient(nc, settings.subjects, timeout=600)
        start = StartRollout(rollout="p3", values={"rate_limit": 200}, percent=10, actor="bench")
        progress(f"rollout over 10% of {tenants:,} tenants")
        began = time.perf_counter()
        reply = await client.send(start)
        took = time.perf_counter() - began
        assert reply.result is not None
        await wait_applied(
            nc, redis_client, settings.subjects, settings.keys, "config",
            reply.result["last_seq"], 60,
        )  # fmt: skip
        progress(f"{reply.result['changed']:,} tenants joined in {took:.1f} s")
        reached = next(f"t{i}" for i in range(tenants) if cohorts.includes(f"t{i}", "p3", 10))
        return reached, int(reply.result["changed"]), took
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
    tenants = 2_000 if options.quick else 10_000
    with local_servers() as settings, tenantctl_process(settings, "serve", "config"):
        asyncio.run(seed(settings, "acme"))
        sdk = ConfigClient(settings)
        try:
            progress(f"{n:,} SDK reads")
            cached = rate(n, lambda: sdk.get_config("acme"))
            typed = rate(n, lambda: sdk.get_config("acme").get_int("rate_limit"))
            reached, joined, took = asyncio.run(seed_rollout(settings, tenants))
            assert sdk.get_config(reached).get_int("rate_limit") == 200
            progress(f"{n:,} SDK reads of {reached}, in the rollout")
            rolled = rate(n, lambda: sdk.get_config(reached))
            rolled_typed = rate(n, lambda: sdk.get_config(reached).get_int("rate_limit"))
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
        Row(f"SDK get_config, rollout over 10% of {tenants:,}", {"reads/s": rolled}),
        Row(f"SDK get_config + get_int, rollout over 10% of {tenants:,}",
            {"reads/s": rolled_typed}),
    ]  # fmt: skip
    started = Row(
        f"start over 10% of {tenants:,} tenants",
        {"tenants joined": joined, "seconds": took, "tenants/s": joined / took},
    )
    verdicts = [
        Verdict("P3", "SDK cached read, one thread", cached, "reads/s", ">= 1,000,000/s",
                cached >= 1_000_000, hgetall, cached / hgetall),
        Verdict("P3", "SDK cached read + typed get", typed, "reads/s", ">= 1,000,000/s",
                typed >= 1_000_000, hgetall, typed / hgetall),
        Verdict("P3", "SDK cached read, rollout active", rolled, "reads/s", ">= 1,000,000/s",
                rolled >= 1_000_000, hgetall, rolled / hgetall),
        Verdict("P3", "SDK cached read + typed get, rollout active", rolled_typed, "reads/s",
                ">= 1,000,000/s", rolled_typed >= 1_000_000, hgetall, rolled_typed / hgetall),
    ]  # fmt: skip
    tables = [
        table("P3: cached config reads, one thread", rows),
        table("A config rollout's start (one event per tenant reached)", [started]),
    ]
    finish(options, tables, verdicts)


if __name__ == "__main__":
    main()
