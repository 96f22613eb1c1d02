"""What every benchmark needs: servers, settings, percentiles, and a result table."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.runtime import embedded
from services.runtime.settings import Settings


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
