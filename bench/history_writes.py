"""The job history's writes: CPU per job event of a projection commit, three ways.

Not a target of TARGETS.md: it isolates what the SQL job history costs the
scheduler's process in P4 and P5. 10,000 jobs' four events each (requested,
scheduled, started, succeeded), ordered as a live run interleaves them (16 jobs
in flight), are committed through `SqlStore.commit` into a fresh SQLite file,
in batches of 10 and of 50 events (the projector's batches under P4's load):
one statement per write (the writes name no row), against the writes merged per
row and run one executemany per statement (what runs now). Each statement is a
round trip to aiosqlite's thread.

    python -m bench.history_writes            # 10,000 jobs
    python -m bench.history_writes --quick    # 2,000 jobs

CPU is the process's (`time.process_time`, every thread), per event.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import Row, arguments, progress, table
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.jobs import JobRequested, JobScheduled, JobStarted, JobSucceeded
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.jobs import history
from tenantplane.services.jobs.history import JobHistoryProjection
from tenantplane.services.runtime.database import create_engine
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.stores.sql import Bound, SqlOp, SqlStore

IN_FLIGHT = 16
WAYS = {"a statement per write": False, "merged per row (now)": True}


def job_events(jobs: int) -> list[StoredEvent]:
    """Every job's four events, as a run with `IN_FLIGHT` jobs at a time orders them."""
    lives = []
    for i in range(jobs):
        job_id, tenant = f"j{i}", f"t{i % 10}"
        life = (
            JobRequested(job_id=job_id, kind="mark"),
            JobScheduled(job_id=job_id, pool="default", attempt=1),
            JobStarted(job_id=job_id, attempt=1, worker="w"),
            JobSucceeded(job_id=job_id, attempt=1, result={"started_at": 1.0}),
        )
        lives.append([Envelope.wrap(data, tenant_id=tenant, actor="bench") for data in life])
    ordered = [
        life[step]
        for first in range(0, jobs, IN_FLIGHT)
        for step in range(4)
        for life in lives[first : first + IN_FLIGHT]
    ]
    return [StoredEvent(seq, "s", envelope) for seq, envelope in enumerate(ordered, 1)]


async def cpu_per_event(events: list[StoredEvent], batch: int, merged: bool) -> float:
    """µs of CPU per event to commit `events` in batches of `batch`."""
    projection = JobHistoryProjection(Subjects("bench"))
    batches: list[list[SqlOp]] = []
    for start in range(0, len(events), batch):
        ops = [op for event in events[start : start + batch] for op in projection.apply(event)]
        if not merged:
            ops = [Bound(op.statement, op.params) if isinstance(op, Bound) else op for op in ops]
        batches.append(ops)
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'history.db'}")
        try:
            await SqlStore.create_tables(
                engine, [history.jobs, history.attempts, history.transitions]
            )
            store = SqlStore(engine, projection.name)
            await store.load()
            began = time.process_time()
            for checkpoint, ops in enumerate(batches):
                await store.commit(checkpoint, checkpoint + 1, ops)
            return (time.process_time() - began) / len(events) * 1e6
        finally:
            await engine.dispose()


def main() -> None:
    options = arguments(__doc__ or "")
    jobs = 2_000 if options.quick else 10_000
    events = job_events(jobs)
    rows = []
    for way, merged in WAYS.items():
        progress(f"{way}: {len(events):,} events")
        figures = {
            f"batch of {batch}": asyncio.run(cpu_per_event(events, batch, merged))
            for batch in (10, 50)
        }
        rows.append(Row(way, figures))
    print(table("Job history commits: µs of CPU per job event", rows))


if __name__ == "__main__":
    main()
