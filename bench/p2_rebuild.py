"""P2: rebuilding the config projection from the log.

Fills a fresh log with tenants and config changes, then rebuilds the config
read model into Redis (`RedisRebuild`, as `tenantctl projection rebuild config`
does: replay into a shadow, then one atomic swap).

Baseline in the same run: the raw ordered-consumer read rate of the same events
into Python (no decoding, no Redis).

    python -m bench.p2_rebuild            # 1,000,000 events (10,000 tenants x 100)
    python -m bench.p2_rebuild --quick    # 100,000 events (1,000 tenants x 100)

Target (TARGETS.md): >= 50,000 events/s, and >= 60% of the raw read rate.
"""

from __future__ import annotations

import time

from bench.common import Row, Verdict, arguments, finish, local_servers, progress, table
from bench.logfill import fill, rebuild_config
from tenantplane.contracts import EVENTS
from tenantplane.services.cli.context import run_loop
from tenantplane.services.runtime.app import ensure_streams
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.consumers import read_raw
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings


async def measure(settings: Settings, tenants: int) -> tuple[int, float, float]:
    """(events, raw reads/s, rebuild events/s)."""
    nc = await connect_nats(settings, "bench-p2")
    redis = connect_redis(settings)
    try:
        log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
        await ensure_streams(log, settings)
        await fill(log, tenants, sets=99, keys=3)
        progress("raw ordered-consumer read")
        start, count = time.perf_counter(), 0
        stream = settings.subjects.control_stream
        async for _ in read_raw(log.js, stream, settings.subjects.all_events()):
            count += 1
        raw_rate = count / (time.perf_counter() - start)
        progress("rebuild of the config projection")
        result = await rebuild_config(nc, redis, log, settings)
        return result.events, raw_rate, result.events / result.seconds
    finally:
        await redis.aclose()
        await nc.close()


def main() -> None:
    options = arguments(__doc__ or "")
    tenants = 1_000 if options.quick else 10_000
    with local_servers() as settings:
        events, raw_rate, rate = run_loop(measure(settings, tenants))
    share = rate / raw_rate
    rows = [
        Row("raw ordered-consumer read (baseline)", {"events/s": raw_rate}),
        Row("config projection rebuild", {"events/s": rate}, f"{events:,} events"),
    ]
    verdicts = [
        Verdict("P2", "rebuild rate", rate, "events/s", ">= 50,000/s", rate >= 50_000,
                raw_rate, share),
        Verdict("P2", "share of the raw read rate", 100 * share, "%", ">= 60%", share >= 0.6),
    ]  # fmt: skip
    finish(options, [table(f"P2: config projection rebuild ({events:,} events)", rows)], verdicts)


if __name__ == "__main__":
    main()
