"""P1: config change propagation. A command is sent; when does the SDK (and Redis) see it?

The config service runs in its own process (`tenantctl serve config`), then in
two (`--only commands` and `--only projections`, on a fresh namespace). This
process sends `config.set` commands at a fixed rate, round-robin over 100
tenants, each with a new value, and an `AsyncConfigClient` that has every
tenant cached records when each new value arrives (its change listener fires
once the value has been read back from Redis, so the figure covers Redis too).

Baseline in the same run: raw JetStream, an awaited publish to a stream and an
ordered consumer receiving it, at the same rate.

    python -m bench.p1_propagation            # 10,000 changes at 500/s
    python -m bench.p1_propagation --quick    # 2,500 changes at 500/s

Targets (TARGETS.md): p50 <= 2 ms, p99 <= 10 ms; overhead <= 3x the raw latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nats.js.api import StreamConfig

from bench.common import (
    Row,
    Verdict,
    arguments,
    config_layouts,
    finish,
    local_servers,
    onboard,
    percentiles,
    progress,
    table,
)
from tenantplane.contracts.config import SetConfig
from tenantplane.services.cli.context import run_loop
from tenantplane.services.config.sdk import AsyncConfigClient, TenantConfig
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.settings import Settings

TENANTS = [f"t{i}" for i in range(100)]
RATE = 500
WARMUP = 200


async def paced(count: int, send: Callable[[int], Awaitable[None]]) -> None:
    """Start `send(i)` for i in range(count) at RATE per second, then wait for all."""
    start = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(send(i)))
    await asyncio.gather(*tasks)


async def tenantplane(settings: Settings, count: int) -> tuple[list[float], list[float]]:
    """Latencies (ms): command sent -> reply, and command sent -> new value in the SDK."""
    nc = await connect_nats(settings, "bench-p1")
    sdk = await AsyncConfigClient.connect(settings)
    try:
        client = CommandClient(nc, settings.subjects)
        await onboard(nc, settings, TENANTS)
        await asyncio.sleep(0.5)
        await sdk.warm_up(TENANTS)
        sent: dict[tuple[str, int], float] = {}
        seen: dict[tuple[str, int], float] = {}

        def heard(tenant: str, config: TenantConfig) -> None:
            key = (tenant, config.get("rate_limit"))
            if key in sent and key not in seen:
                seen[key] = time.perf_counter()

        sdk.on_change(heard)
        replies: list[float] = []

        async def send(i: int) -> None:
            tenant, value = TENANTS[i % len(TENANTS)], i + 1
            command = SetConfig(tenant_id=tenant, values={"rate_limit": value}, actor="b")
            sent[(tenant, value)] = start = time.perf_counter()
            await client.send(command)
            replies.append((time.perf_counter() - start) * 1000)

        await paced(count + WARMUP, send)
        await asyncio.sleep(1.0)
        visible = [
            (seen[key] - at) * 1000 for key, at in sent.items() if key in seen and key[1] > WARMUP
        ]
        missing = sum(1 for key in sent if key not in seen)
        if missing:
            progress(f"{missing} changes not seen by the SDK (superseded before it read them)")
        return replies[WARMUP:], visible
    finally:
        await sdk.close()
        await nc.close()


async def raw_jetstream(settings: Settings, count: int) -> list[float]:
    """Latencies (ms): awaited publish to a stream -> an ordered consumer receives it."""
    nc = await connect_nats(settings, "bench-p1-raw")
    js = nc.jetstream()
    stream = f"{settings.namespace.upper()}_RAW"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{settings.namespace}.raw.>"]))
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def received(msg: object) -> None:
        i = int(getattr(msg, "data", b"0"))
        if i >= WARMUP:
            latencies.append((time.perf_counter() - sent[i]) * 1000)

    sub = await js.subscribe(f"{settings.namespace}.raw.>", ordered_consumer=True, cb=received)

    async def send(i: int) -> None:
        sent[i] = time.perf_counter()
        await js.publish(f"{settings.namespace}.raw.{i % len(TENANTS)}", str(i).encode())

    try:
        await paced(count + WARMUP, send)
        await asyncio.sleep(1.0)
        return latencies
    finally:
        await sub.unsubscribe()
        await nc.close()


def main() -> None:
    options = arguments(__doc__ or "")
    count = 2_500 if options.quick else 10_000
    measured = {}
    with local_servers() as servers:
        progress(f"raw JetStream: {count:,} messages at {RATE}/s")
        raw = run_loop(raw_jetstream(servers, count))
        with config_layouts(servers, ["one process", "commands + projection"]) as layouts:
            for layout, settings in layouts:
                progress(f"tenantplane, {layout}: {count:,} config changes at {RATE}/s")
                measured[layout] = run_loop(tenantplane(settings, count))
    raw_p = percentiles(raw)
    rows = [Row("raw JetStream publish -> consume (baseline)", raw_p, f"{len(raw):,} messages")]
    verdicts = []
    for layout, (replies, visible) in measured.items():
        reply_p, visible_p = percentiles(replies), percentiles(visible)
        rows += [
            Row(f"{layout}: command sent -> reply", reply_p, f"{len(replies):,} commands"),
            Row(f"{layout}: sent -> new value in the SDK", visible_p, f"{len(visible):,}"),
        ]
        over50, over99 = visible_p["p50"] / raw_p["p50"], visible_p["p99"] / raw_p["p99"]
        verdicts += [
            Verdict("P1", f"propagation p50, {layout}", visible_p["p50"], "ms", "<= 2 ms",
                    visible_p["p50"] <= 2, raw_p["p50"], over50),
            Verdict("P1", f"propagation p99, {layout}", visible_p["p99"], "ms", "<= 10 ms",
                    visible_p["p99"] <= 10, raw_p["p99"], over99),
            Verdict("P1", f"overhead over raw JetStream (p50), {layout}", over50, "x",
                    "<= 3x", over50 <= 3),
        ]  # fmt: skip
    title = f"P1: config change propagation in ms ({count:,} changes at {RATE}/s)"
    finish(options, [table(title, rows)], verdicts)


if __name__ == "__main__":
    main()
