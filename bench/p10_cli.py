"""P10: how long `tenantctl` takes to answer, as an operator types it.

Each command runs as a new process, as from a shell, several times; the median
is compared with a same-run baseline: `python -c pass` (the interpreter's own
start). Measured: `tenantctl --help`, `tenantctl tenant --help`, and two reads
against a running config service (`tenant list`, `config get`).

    python -m bench.p10_cli             # 15 runs of each
    python -m bench.p10_cli --quick     # 5 runs of each

Targets (issue: a fast CLI): `--help` <= 0.3 s, a read command <= 0.6 s.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time

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
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.settings import Settings


def timed(args: list[str], env: dict[str, str], runs: int) -> float:
    """The median wall time of `args` as a new process, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def serving(settings: Settings) -> None:
    nc = await connect_nats(settings, "bench")
    try:
        await wait_serving(nc, settings.subjects.command("config", RegisterTenant.name))
    finally:
        await nc.close()


def main() -> None:
    options = arguments(__doc__ or "")
    runs = 5 if options.quick else 15
    cli = [sys.executable, "-m", "tenantplane.services.cli"]
    with local_servers() as settings, tenantctl_process(settings, "serve", "config"):
        asyncio.run(serving(settings))
        env = {**os.environ, **settings.to_env(), "TENANTPLANE_ACTOR": "bench"}
        subprocess.run([*cli, "tenant", "create", "acme"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        progress(f"timing each command {runs} times")
        figures = {
            "python -c pass": timed([sys.executable, "-c", "pass"], env, runs),
            "tenantctl --help": timed([*cli, "--help"], env, runs),
            "tenantctl tenant --help": timed([*cli, "tenant", "--help"], env, runs),
            "tenantctl tenant list": timed([*cli, "tenant", "list"], env, runs),
            "tenantctl config get acme": timed([*cli, "config", "get", "acme"], env, runs),
        }
    baseline = figures["python -c pass"]
    rows = [
        Row(what, {"median ms": seconds * 1000, "x baseline": seconds / baseline})
        for what, seconds in figures.items()
    ]
    verdicts = [
        Verdict("P10", "tenantctl --help", figures["tenantctl --help"] * 1000, "ms",
                "<= 300 ms", figures["tenantctl --help"] <= 0.3, baseline * 1000,
                figures["tenantctl --help"] / baseline),
        Verdict("P10", "read command (tenant list)", figures["tenantctl tenant list"] * 1000,
                "ms", "<= 600 ms", figures["tenantctl tenant list"] <= 0.6, baseline * 1000,
                figures["tenantctl tenant list"] / baseline),
    ]  # fmt: skip
    finish(options, [table("P10: tenantctl, one process per command", rows)], verdicts)


if __name__ == "__main__":
    main()
