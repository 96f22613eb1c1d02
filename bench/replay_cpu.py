"""CPU time per event of a config projection rebuild, this process and nats-server.

Whole-benchmark rates on a shared 2-core machine move by a third from one run to
the next; the CPU a replay spends per event moves far less, so a change to the
replay path is measured with this, each build in turn (P2 and P7 say what it
adds up to). Fills a fresh log once, then rebuilds the config read model
`--rounds` times in this process (as `tenantctl projection rebuild config`) and
prints, per round, the rebuild's time and CPU per event, and the CPU
nats-server and redis-server spent per event meanwhile (Redis's: of which
running the commits' and the switch's scripts).

    python -m bench.replay_cpu                           # P2's events: 1,000 tenants x 100
    python -m bench.replay_cpu --tenants 20000 --sets 1 --keys 20   # P7's events
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import redis.asyncio as aioredis

from bench.common import local_servers, progress
from bench.logfill import fill, rebuild_config
from tenantplane.contracts import EVENTS
from tenantplane.services.cli.context import run_loop
from tenantplane.services.runtime.app import ensure_streams
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings

SERVERS = ("nats-server", "redis-server")
SCRIPT_STATS = ("cmdstat_eval", "cmdstat_evalsha")


def children_cpu(name: str) -> float:
    """CPU seconds used so far by this process's children whose command line has `name`."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == os.getpid() and name.encode() in command:
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


async def scripts_s(redis: aioredis.Redis) -> float:
    """Seconds Redis spent running scripts (the commits, the switch) since its stats reset."""
    stats = await redis.info("commandstats")
    return sum(float(v["usec"]) for k, v in stats.items() if k in SCRIPT_STATS) / 1e6


async def measure(settings: Settings, options: argparse.Namespace) -> None:
    nc = await connect_nats(settings, "bench-replay-cpu")
    redis = connect_redis(settings)
    try:
        log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
        await ensure_streams(log, settings)
        await fill(log, options.tenants, sets=options.sets, keys=options.keys)
        for _ in range(options.rounds):
            servers = {name: children_cpu(name) for name in SERVERS}
            await redis.config_resetstat()
            cpu = time.process_time()
            result = await rebuild_config(nc, redis, log, settings)
            per_event = 1e6 / result.events
            used = {name: (children_cpu(name) - servers[name]) * per_event for name in SERVERS}
            scripts = await scripts_s(redis)
            print(
                f"{result.events:,} events in {result.seconds:.2f} s: rebuild "
                f"{(time.process_time() - cpu) * per_event:.1f} µs of CPU an event; "
                + ", ".join(f"{name} {us:.1f}" for name, us in used.items())
                + f" (of which scripts {scripts * per_event:.1f})",
                flush=True,
            )
    finally:
        await redis.aclose()
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--sets", type=int, default=99, help="config changes per tenant")
    parser.add_argument("--keys", type=int, default=3, help="keys per change")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with local_servers() as settings:
        progress(f"{options.tenants:,} tenants x {options.sets} changes of {options.keys} keys")
        run_loop(measure(settings, options))


if __name__ == "__main__":
    main()
