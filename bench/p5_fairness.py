"""P5: fairness. One tenant floods jobs; 9 quiet tenants send one job a second each.

The config service runs in one process, the scheduler in two (`tenantctl serve
scheduler --only commands`, its loop, and `--only projections`, its job history:
the chart's `services.scheduler.split`), one worker pool in another (`tenantctl
worker run`, 8 threads); this process appends the flood and submits the quiet
jobs.

Measures the quiet tenants' wait (submit sent -> job started) through tenantplane with
the flood, without it (the baseline), and through one shared FIFO dramatiq
queue with the same load, workers and job duration.

    python -m bench.p5_fairness            # full: 20,000-job flood
    python -m bench.p5_fairness --quick    # under a minute: 3,000-job flood

Targets (TARGETS.md): quiet p99 with the flood <= 2x without it; the shared FIFO
>= 10x worse than tenantplane.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.common import (
    Row,
    Verdict,
    arguments,
    finish,
    local_servers,
    onboard,
    percentiles,
    progress,
    table,
    tenantctl_process,
)
from tenantplane.contracts import EVENTS
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.jobs import JobRequested, JobStarted
from tenantplane.services.cli.context import run_loop
from tenantplane.services.jobs.aggregate import job_id_for
from tenantplane.services.jobs.client import JobClient
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.errors import UnknownJobKind
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.localstate import resolve_redis_url
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.worker.context import JobContext
from tenantplane.services.worker.kinds import JobKinds

THREADS = 8
WORKER = ["--pool", "default", "--threads", str(THREADS), "--kinds", "bench.p5_fairness:KINDS"]
LAYOUT = [
    ["serve", "config"],
    ["serve", "scheduler", "--only", "commands"],
    ["serve", "scheduler", "--only", "projections"],
    ["worker", "run", *WORKER],
]
JOB_MS = 4.0
QUIET = [f"quiet-{i}" for i in range(9)]
KINDS = JobKinds()


@KINDS.job("work")
def work(ctx: JobContext) -> None:
    """A job that takes JOB_MS of a worker thread."""
    time.sleep(JOB_MS / 1000)


def tenantplane(settings: Settings, flood: int, seconds: float) -> list[float]:
    """Quiet tenants' waits (ms) through scheduler and pool, with `flood` noisy jobs."""
    settings = settings.model_copy(update={"pools": {"default": THREADS * 2}})
    with contextlib.ExitStack() as processes:
        for args in LAYOUT:
            processes.enter_context(tenantctl_process(settings, *args))
        return run_loop(_load(settings, flood, seconds))


async def _load(settings: Settings, flood: int, seconds: float) -> list[float]:
    nc = await connect_nats(settings, "bench-p5")
    try:
        log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
        limits = {"jobs.rate_per_minute": 10_000_000, "jobs.max_concurrency": THREADS * 2}
        await onboard(nc, settings, ["noisy", *QUIET], limits)
        jobs = JobClient(nc, settings.subjects, actor="bench")
        # Warm-up, not measured: every path the quiet jobs take has run once; then the
        # servers settle (the waits' consumers are deleted).
        await asyncio.gather(*(jobs.wait(t, j, 30) for j, t in (await _warm_up(jobs)).items()))
        await asyncio.sleep(1.0)
        await _flood(log, flood)
        sent = await _every_second(seconds, lambda: _submit_quiet(jobs))
        return await _waits(log, sent)
    finally:
        await nc.close()


async def _flood(log: EventLog, count: int) -> None:
    if count:
        await log.append_many([
            Envelope.wrap(JobRequested(job_id=job_id_for("noisy", f"n{i}"), kind="work"),
                          tenant_id="noisy", actor="bench")
            for i in range(count)
        ])  # fmt: skip


async def _submit_quiet(jobs: JobClient) -> dict[str, float]:
    """One job per quiet tenant, submitted as a service does (a command to the
    scheduler), all at once; when each was sent."""

    async def submit(tenant: str) -> tuple[str, float]:
        sent = time.time()
        return (await jobs.submit(tenant, "work")).job_id, sent

    return dict(await asyncio.gather(*(submit(t) for t in QUIET)))


async def _warm_up(jobs: JobClient) -> dict[str, str]:
    """A first job of each quiet tenant, once the scheduler has heard the pool's kinds;
    its tenant by job id."""
    for _ in range(100):
        try:
            return {(await jobs.submit(t, "work")).job_id: t for t in QUIET}
        except UnknownJobKind:
            await asyncio.sleep(0.1)  # the pool's first heartbeat is on its way
    raise RuntimeError("no worker announced the bench's job kind")


async def _every_second(
    seconds: float, tick: Callable[[], Awaitable[dict[str, float]]]
) -> dict[str, float]:
    sent: dict[str, float] = {}
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        sent |= await tick()
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start) % 1.0))
    await asyncio.sleep(3.0)  # let the last quiet jobs start
    return sent


async def _waits(log: EventLog, sent: dict[str, float]) -> list[float]:
    """ms from each quiet job's submit being sent to its start."""
    started: dict[str, float] = {}
    async for stored in log.read(log.subjects.all_jobs()):
        data = stored.envelope.data
        if isinstance(data, JobStarted) and data.job_id in sent:
            started.setdefault(data.job_id, stored.envelope.occurred_at.timestamp())
    return [(started[j] - at) * 1000 for j, at in sent.items() if j in started]


def shared_fifo(settings: Settings, flood: int, seconds: float) -> list[float]:
    """Quiet tenants' waits (ms) through one shared FIFO dramatiq queue."""
    broker = RedisBroker(url=resolve_redis_url(settings), namespace=f"{settings.namespace}-fifo")  # type: ignore[no-untyped-call]
    started: dict[str, float] = {}

    @dramatiq.actor(broker=broker, queue_name="shared", max_retries=0)
    def fifo_work(job: str) -> None:
        started[job] = time.time()
        time.sleep(JOB_MS / 1000)

    broker.emit_after("process_boot")
    for i in range(flood):
        fifo_work.send(f"noisy-{i}")
    worker = dramatiq.Worker(broker, queues={"shared"}, worker_threads=THREADS)
    worker.start()
    enqueued: dict[str, float] = {}
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for tenant in QUIET:
            job = f"{tenant}-{len(enqueued)}"
            enqueued[job] = time.time()
            fifo_work.send(job)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - start) % 1.0))
    deadline = time.monotonic() + 120
    while any(j not in started for j in enqueued) and time.monotonic() < deadline:
        time.sleep(0.2)
    worker.stop()
    broker.close()
    return [(started[j] - at) * 1000 for j, at in enqueued.items() if j in started]


def _renamed(settings: Settings, suffix: str) -> Settings:
    return settings.model_copy(update={"namespace": settings.namespace + suffix})


def main() -> None:
    options = arguments(__doc__ or "")
    flood, seconds = (3_000, 6.0) if options.quick else (20_000, 20.0)
    with local_servers() as settings:
        progress("tenantplane without the flood (baseline)")
        calm = tenantplane(_renamed(settings, "a"), 0, seconds)
        progress(f"tenantplane with a {flood:,}-job flood")
        fair = tenantplane(_renamed(settings, "b"), flood, seconds)
        progress("one shared FIFO queue with the same flood")
        fifo = shared_fifo(settings, flood, seconds)
    calm_p, fair_p, fifo_p = percentiles(calm), percentiles(fair), percentiles(fifo)
    ratio = fair_p["p99"] / calm_p["p99"]
    fifo_ratio = fifo_p["p99"] / fair_p["p99"]
    rows = [
        Row("tenantplane, no flood (baseline)", calm_p, f"{len(calm)} quiet jobs"),
        Row(f"tenantplane, {flood:,}-job flood", fair_p, f"{len(fair)} quiet jobs"),
        Row(f"shared FIFO, {flood:,}-job flood", fifo_p, f"{len(fifo)} quiet jobs"),
    ]
    verdicts = [
        Verdict("P5", "quiet p99 wait with the flood", fair_p["p99"], "ms",
                "<= 2x without it", ratio <= 2, calm_p["p99"], ratio),
        Verdict("P5", "shared FIFO quiet p99 wait", fifo_p["p99"], "ms",
                ">= 10x tenantplane's", fifo_ratio >= 10, fair_p["p99"], fifo_ratio),
    ]  # fmt: skip
    title = f"P5 fairness: quiet tenants' wait in ms ({THREADS} threads, {JOB_MS:g} ms jobs)"
    finish(options, [table(title, rows)], verdicts)


if __name__ == "__main__":
    main()
