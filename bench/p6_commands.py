"""P6: commands through request/reply with optimistic concurrency.

Several concurrent clients send `config.set` commands to the config service, each
to its own tenants, as fast as replies come back. Every command is validated,
decided on the tenant's state and appended with the expected sequence of that
tenant's subjects. Three layouts of the service, each on a fresh namespace of
the same servers: one process (`tenantctl serve config`); commands and the
projection in two processes (`--only commands`, `--only projections`); and two
replicas of the whole service in one queue group.

Baseline in the same run: a raw NATS request/reply round trip to a responder
in its own process that answers at once, with the same clients.

    python -m bench.p6_commands            # 8 clients, 20,000 commands
    python -m bench.p6_commands --quick    # 8 clients, 4,000 commands

Target (TARGETS.md): >= 2,000 commands/s; p50 latency reported.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from bench.common import (
    CONFIG_LAYOUTS,
    Row,
    Verdict,
    arguments,
    config_layouts,
    finish,
    local_servers,
    percentiles,
    progress,
    table,
    wait_serving,
)
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.cli.context import run_loop
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.settings import Settings

CLIENTS = 8
TENANTS_PER_CLIENT = 4


async def drive(
    count: int, call: Callable[[int, int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """CLIENTS loops each awaiting `call(client, i)`; (calls/s, latencies in ms)."""
    latencies: list[float] = []

    async def client(c: int) -> None:
        for i in range(c, count, CLIENTS):
            start = time.perf_counter()
            await call(c, i)
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(CLIENTS)))
    return count / (time.perf_counter() - start), latencies


async def commands(settings: Settings, count: int) -> tuple[float, list[float]]:
    nc = await connect_nats(settings, "bench-p6")
    try:
        client = CommandClient(nc, settings.subjects, timeout=30)
        await wait_serving(nc, settings.subjects.command("config", RegisterTenant.name))
        tenants = [f"t{c}-{k}" for c in range(CLIENTS) for k in range(TENANTS_PER_CLIENT)]
        for tenant in tenants:
            await client.send(RegisterTenant(tenant_id=tenant, display_name=tenant, actor="b"))

        async def set_config(c: int, i: int) -> None:
            tenant = f"t{c}-{i % TENANTS_PER_CLIENT}"
            await client.send(SetConfig(tenant_id=tenant, values={"rate_limit": i}, actor="b"))

        await drive(CLIENTS * 50, set_config)  # warm-up
        return await drive(count, set_config)
    finally:
        await nc.close()


RESPONDER = """
import asyncio, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1])
    async def answer(msg):
        await msg.respond(b'{"ok":true}')
    await nc.subscribe(sys.argv[2], queue="echo", cb=answer)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def raw_request_reply(settings: Settings, count: int) -> tuple[float, list[float]]:
    subject = f"{settings.namespace}.echo"
    responder = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
        [sys.executable, "-c", RESPONDER, settings.nats_url, subject], stdout=subprocess.PIPE
    )
    assert responder.stdout is not None
    assert responder.stdout.readline().strip() == b"ready"
    nc = await connect_nats(settings, "bench-p6-raw")
    payload = SetConfig(tenant_id="t0-0", values={"rate_limit": 1}, actor="b").model_dump_json()

    async def request(c: int, i: int) -> None:
        await nc.request(subject, payload.encode(), timeout=30)

    try:
        await drive(CLIENTS * 50, request)
        return await drive(count, request)
    finally:
        await nc.close()
        responder.terminate()
        responder.wait()


def main() -> None:
    options = arguments(__doc__ or "")
    count = 4_000 if options.quick else 20_000
    measured: dict[str, tuple[float, list[float]]] = {}
    with local_servers() as servers:
        progress(f"raw request/reply: {count:,} round trips, {CLIENTS} clients")
        raw_rate, raw = run_loop(raw_request_reply(servers, count))
        with config_layouts(servers, list(CONFIG_LAYOUTS)) as layouts:
            for layout, settings in layouts:
                progress(f"config.set commands, {layout}: {count:,}, {CLIENTS} clients")
                measured[layout] = run_loop(commands(settings, count))
    raw_p = percentiles(raw)
    rows = [Row("raw request/reply (baseline)", {"per s": raw_rate, **raw_p})]
    verdicts = []
    for layout, (rate, latencies) in measured.items():
        cmd_p = percentiles(latencies)
        rows.append(Row(f"config.set command, {layout}", {"per s": rate, **cmd_p}))
        verdicts += [
            Verdict("P6", f"commands/s, {CLIENTS} clients, {layout}", rate, "/s",
                    ">= 2,000/s", rate >= 2_000, raw_rate, rate / raw_rate),
            Verdict("P6", f"command p50 latency, {layout}", cmd_p["p50"], "ms", "reported",
                    None, raw_p["p50"], cmd_p["p50"] / raw_p["p50"]),
        ]  # fmt: skip
    title = f"P6: commands through request/reply ({count:,}, {CLIENTS} clients; latency in ms)"
    finish(options, [table(title, rows)], verdicts)


if __name__ == "__main__":
    main()
