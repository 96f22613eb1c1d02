"""What every benchmark needs: servers, settings, percentiles, and a result table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from nats.aio.client import Client as NATS

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.settings import Settings


@contextlib.contextmanager
def local_servers() -> Iterator[Settings]:
    """nats-server and redis-server on free ports in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as tmp:
        root = Path(tmp)
        nats = embedded.nats_server(root / "nats").start()
        redis = embedded.redis_server(root / "redis", persist=False).start()
        try:
            yield Settings(
                nats_url=nats.url,
                redis_url=redis.url,
                database_url=f"sqlite+aiosqlite:///{root / 'bench.db'}",
                data_dir=root,
                namespace=f"b{uuid.uuid4().hex[:8]}",
            )
        finally:
            redis.stop()
            nats.stop()


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of `values` (milliseconds in, milliseconds out)."""
    if not values:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)
    cut = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else ordered * 99
    )
    return {"p50": cut[49], "p90": cut[89], "p99": cut[98], "max": ordered[-1]}


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's table."""

    what: str
    figures: dict[str, float]
    note: str = ""


def table(title: str, rows: list[Row]) -> str:
    """A small Markdown table of rows."""
    columns = list(rows[0].figures)
    lines = [
        f"### {title}",
        "",
        "| | " + " | ".join(columns) + " | |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for row in rows:
        cells = " | ".join(f"{row.figures[c]:.1f}" for c in columns)
        lines.append(f"| {row.what} | {cells} | {row.note} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    """One figure against its target in TARGETS.md, with the same run's baseline."""

    target_id: str
    figure: str
    measured: float
    unit: str
    target: str
    ok: bool | None  # None: reported, no target
    baseline: float | None = None
    ratio: float | None = None

    def cells(self) -> list[str]:
        """The verdict as cells of the summary table."""
        verdict = "reported" if self.ok is None else ("PASS" if self.ok else "FAIL")
        return [
            self.target_id,
            self.figure,
            f"{self.measured:,.1f} {self.unit}",
            self.target,
            "" if self.baseline is None else f"{self.baseline:,.1f} {self.unit}",
            "" if self.ratio is None else f"{self.ratio:.2f}x",
            verdict,
        ]


SUMMARY_HEADER = ["id", "figure", "measured", "target", "baseline", "ratio", "verdict"]


def summary(verdicts: list[Verdict]) -> str:
    """The Markdown summary table of verdicts."""
    lines = ["| " + " | ".join(SUMMARY_HEADER) + " |", "|---" * len(SUMMARY_HEADER) + "|"]
    lines += ["| " + " | ".join(v.cells()) + " |" for v in verdicts]
    return "\n".join(lines)


def arguments(doc: str) -> argparse.Namespace:
    """The options every benchmark takes: --quick, and --json FILE for `bench.run_all`."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument("--json", type=Path, help="also write the verdicts to this file")
    return parser.parse_args()


def finish(options: argparse.Namespace, tables: list[str], verdicts: list[Verdict]) -> None:
    """Print the benchmark's tables and verdicts (and write them for `bench.run_all`)."""
    for text in tables:
        print(text, end="\n\n")
    print(summary(verdicts))
    if options.json is not None:
        options.json.write_text(json.dumps([asdict(v) for v in verdicts]))


def progress(message: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(f"... {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def tenantctl_process(
    settings: Settings, *args: str, output: IO[bytes] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`tenantctl ARGS` in its own process (its own core and event loop), e.g. a service;
    its output goes to `output` when given (else to this process's)."""
    env = {**os.environ, **settings.to_env(), "TENANTPLANE_OPS_PORT": "0"}
    env["TENANTPLANE_LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "warning")
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantplane.services.cli", *args],
        env=env,
        stdout=output,
        stderr=output,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# How the config service can run: the `tenantctl` processes of each layout.
CONFIG_LAYOUTS: dict[str, list[list[str]]] = {
    "one process": [["serve", "config"]],
    "commands + projection": [
        ["serve", "config", "--only", "commands"],
        ["serve", "config", "--only", "projections"],
    ],
    "2 replicas": [["serve", "config"], ["serve", "config"]],
}


@contextlib.contextmanager
def config_layouts(
    servers: Settings, layouts: list[str]
) -> Iterator[Iterator[tuple[str, Settings]]]:
    """Each layout of the config service in turn, on a fresh namespace of `servers`:
    iterate to start the next one (the previous one stops)."""
    with contextlib.ExitStack() as running:

        def each() -> Iterator[tuple[str, Settings]]:
            for n, layout in enumerate(layouts):
                running.close()
                settings = servers.model_copy(update={"namespace": f"{servers.namespace}{n}"})
                for args in CONFIG_LAYOUTS[layout]:
                    running.enter_context(tenantctl_process(settings, *args))
                yield layout, settings

        yield each()


async def onboard(
    nc: NATS, settings: Settings, tenants: list[str], values: dict[str, Any] | None = None
) -> int:
    """Register `tenants` (each with config `values`) once the config service answers;
    the sequence of the last event appended."""
    client = CommandClient(nc, settings.subjects)
    await wait_serving(nc, settings.subjects.command("config", RegisterTenant.name))
    seq = 0
    for tenant in tenants:
        reply = await client.send(
            RegisterTenant(tenant_id=tenant, display_name=tenant, actor="bench")
        )
        if values:
            reply = await client.send(SetConfig(tenant_id=tenant, values=values, actor="bench"))
        seq = reply.seq or seq
    return seq


async def wait_serving(nc: NATS, subject: str, timeout: float = 30.0) -> None:
    """Wait until a service answers requests on `subject`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await nc.request(subject, b"{}", timeout=0.2)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing serves {subject} after {timeout}s") from None
            await asyncio.sleep(0.1)
