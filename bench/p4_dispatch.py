"""P4: job dispatch. JobRequested appended -> the job's body starts, and jobs/s end to end.

The config service and the scheduler run in one process (`tenantctl serve config
scheduler`), one worker pool in another (`tenantctl worker run`, 8 threads).
Jobs are no-ops that return the time their body started.

- Latency: jobs requested at 100/s, one at a time, over 10 tenants.
- Throughput: a burst of no-op jobs over 10 tenants, requested -> all succeeded.

Baseline in the same run: bare dramatiq (same Redis, same thread count),
enqueue -> actor starts, and its throughput on the same burst.

    python -m bench.p4_dispatch            # 1,000 latency jobs, 10,000-job burst
    python -m bench.p4_dispatch --quick    # 300 latency jobs, 2,000-job burst

Targets (TARGETS.md): p50 <= 10 ms, p99 <= 50 ms; >= 1,000 no-op jobs/s and >= 60% of
bare dramatiq's rate in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from nats.aio.msg import Msg

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
from tenantplane.contracts.jobs import JobRequested, JobSucceeded
from tenantplane.services.cli.context import run_loop
from tenantplane.services.jobs.aggregate import job_id_for
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.consumers import follow
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.worker.context import JobContext
from tenantplane.services.worker.kinds import JobKinds

THREADS = 8
WORKER = ["--pool", "default", "--threads", str(THREADS), "--kinds", "bench.p4_dispatch:KINDS"]
TENANTS = [f"t{i}" for i in range(10)]
KINDS = JobKinds()


@KINDS.job("mark")
def mark(ctx: JobContext) -> dict[str, float]:
    """A no-op that says when it started."""
    return {"started_at": time.time()}


async def onboard_tenants(settings: Settings) -> None:
    """Register the benchmark's tenants, with job limits that never hold it back."""
    nc = await connect_nats(settings, "bench-p4")
    try:
        limits = {"jobs.rate_per_minute": 10_000_000, "jobs.max_concurrency": 1_000}
        await onboard(nc, settings, TENANTS, limits)
    finally:
        await nc.close()


async def latencies(settings: Settings, count: int) -> list[float]:
    """ms from JobRequested (created) to the body's start, jobs requested at 100/s."""
    nc = await connect_nats(settings, "bench-p4-lat")
    log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
    jobs = JobLog(log, actor="bench")
    try:
        ids = []
        for i in range(count + 20):
            ids.append((await jobs.submit(TENANTS[i % len(TENANTS)], "mark")).job_id)
            await asyncio.sleep(0.01)
        await asyncio.sleep(2.0)
        requested, started = await _times(log, set(ids[20:]))
        return [(started[j] - requested[j]) * 1000 for j in requested if j in started]
    finally:
        await nc.close()


async def throughput(settings: Settings, count: int) -> float:
    """No-op jobs per second: the burst's first request -> its last success."""
    nc = await connect_nats(settings, "bench-p4-burst")
    log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
    try:
        burst = [
            Envelope.wrap(
                JobRequested(job_id=job_id_for(t, f"b{i}"), kind="mark"), tenant_id=t, actor="b"
            )
            for i in range(count)
            for t in [TENANTS[i % len(TENANTS)]]
        ]
        ids = {e.data.job_id for e in burst if isinstance(e.data, JobRequested)}
        done: set[str] = set()
        finished = asyncio.Event()
        last = 0.0

        async def on_msg(msg: Msg) -> None:
            nonlocal last
            if b'"job.succeeded"' not in msg.data:
                return  # the observer shares the cores with what it measures: decode little
            data = EVENTS.decode(msg.data).data
            if isinstance(data, JobSucceeded) and data.job_id in ids:
                done.add(data.job_id)
                last = time.time()
                if len(done) == count:
                    finished.set()

        sub = await follow(log.js, log.subjects, [log.subjects.all_jobs()], on_msg, 1)
        start = time.time()
        await log.append_many(burst)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), 300)
        await sub.unsubscribe()
        if len(done) < count:
            progress(f"only {len(done)} of {count} jobs succeeded")
        return len(done) / (last - start)
    finally:
        await nc.close()


async def _times(log: EventLog, ids: set[str]) -> tuple[dict[str, float], dict[str, float]]:
    requested: dict[str, float] = {}
    started: dict[str, float] = {}
    async for stored in log.read(log.subjects.all_jobs()):
        data: Any = stored.envelope.data
        if data.job_id not in ids:
            continue
        if isinstance(data, JobRequested):
            requested[data.job_id] = stored.envelope.occurred_at.timestamp()
        elif isinstance(data, JobSucceeded):
            started[data.job_id] = float(str(data.result["started_at"]))
    return requested, started


def bare_dramatiq(settings: Settings, count: int, burst: int) -> tuple[list[float], float]:
    """Enqueue -> actor start latencies (ms) at 100/s, and the burst's jobs/s."""
    broker = RedisBroker(url=settings.redis_url, namespace=f"{settings.namespace}-bare")  # type: ignore[no-untyped-call]
    started: dict[str, float] = {}

    @dramatiq.actor(broker=broker, queue_name="bare", max_retries=0)
    def bare(job: str) -> None:
        started[job] = time.time()

    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, queues={"bare"}, worker_threads=THREADS, worker_timeout=20)
    worker.start()
    try:
        sent: dict[str, float] = {}
        for i in range(count + 20):
            sent[f"l{i}"] = time.time()
            bare.send(f"l{i}")
            time.sleep(0.01)
        time.sleep(1.0)
        waits = [(started[j] - at) * 1000 for j, at in list(sent.items())[20:] if j in started]
        start = time.time()
        for i in range(burst):
            bare.send(f"b{i}")
        while sum(1 for j in started if j.startswith("b")) < burst and time.time() - start < 120:
            time.sleep(0.05)
        last = max(at for j, at in started.items() if j.startswith("b"))
        return waits, burst / (last - start)
    finally:
        worker.stop()
        broker.close()


def main() -> None:
    options = arguments(__doc__ or "")
    count, burst = (300, 2_000) if options.quick else (1_000, 10_000)
    with local_servers() as base:
        settings = base.model_copy(update={"pools": {"default": THREADS * 2}})
        progress(f"bare dramatiq: {count} jobs at 100/s, then a {burst:,}-job burst")
        bare_waits, bare_rate = bare_dramatiq(settings, count, burst)
        with (
            tenantctl_process(settings, "serve", "config", "scheduler"),
            tenantctl_process(settings, "worker", "run", *WORKER),
        ):
            run_loop(onboard_tenants(settings))
            progress(f"tenantplane: {count} jobs at 100/s")
            waits = run_loop(latencies(settings, count))
            progress(f"tenantplane: a {burst:,}-job burst")
            rate = run_loop(throughput(settings, burst))
    bare_p, tp_p = percentiles(bare_waits), percentiles(waits)
    rows = [
        Row("bare dramatiq enqueue -> start (baseline)", {**bare_p, "jobs/s": bare_rate}),
        Row("tenantplane JobRequested -> body starts", {**tp_p, "jobs/s": rate}),
    ]
    verdicts = [
        Verdict("P4", "dispatch p50", tp_p["p50"], "ms", "<= 10 ms", tp_p["p50"] <= 10,
                bare_p["p50"], tp_p["p50"] / bare_p["p50"]),
        Verdict("P4", "dispatch p99", tp_p["p99"], "ms", "<= 50 ms", tp_p["p99"] <= 50,
                bare_p["p99"], tp_p["p99"] / bare_p["p99"]),
        Verdict("P4", "no-op jobs/s, scheduler + one pool", rate, "jobs/s",
                ">= 1,000/s and >= 60% of bare", rate >= 1_000 and rate >= 0.6 * bare_rate,
                bare_rate, rate / bare_rate),
    ]  # fmt: skip
    title = f"P4: job dispatch ({THREADS} worker threads; latency in ms)"
    finish(options, [table(title, rows)], verdicts)


if __name__ == "__main__":
    main()
