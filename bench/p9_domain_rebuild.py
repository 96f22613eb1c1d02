"""P9: rebuilding a domain's projection into Redis.

Fills billing's stream with invoice events (issued and paid, across tenants),
then rebuilds the example service's balance projection (`RedisRebuild`: replay
into keys beside the live ones, then one atomic swap).

Baseline in the same run: the raw ordered-consumer read rate of the same events
into Python (no decoding, no Redis).

    python -m bench.p9_domain_rebuild            # 500,000 events
    python -m bench.p9_domain_rebuild --quick    # 100,000 events

Target (TARGETS.md): >= 60% of the raw read rate.
"""

from __future__ import annotations

import time

import uvloop

import tenantplane as tp
from bench.common import Row, Verdict, arguments, finish, local_servers, progress, table
from examples.billing.events import BILLING, InvoiceIssued, InvoicePaid
from examples.billing.projections import BalanceProjection
from tenantplane.services.runtime.consumers import read_raw

TENANTS = 1_000
CHUNK = 20_000


async def fill(store: tp.DomainStore, count: int) -> None:
    """`count` events: each invoice issued, then paid."""
    for start in range(0, count, CHUNK):
        batch: list[tuple[str, tp.DomainEvent]] = []
        for i in range(start, min(count, start + CHUNK), 2):
            tenant, invoice = f"t{i % TENANTS}", f"inv-{i}"
            batch.append((tenant, InvoiceIssued(invoice_id=invoice, customer="c",
                                                amount_cents=100)))  # fmt: skip
            batch.append((tenant, InvoicePaid(invoice_id=invoice, amount_cents=100)))
        await store.append_many(batch, actor="bench")
        progress(f"filled {min(count, start + CHUNK):,} of {count:,}")


async def measure(settings: tp.Settings, count: int) -> tuple[float, float]:
    """(raw reads/s, rebuild events/s)."""
    nc = await tp.connect_nats(settings, "bench-p9")
    redis = tp.connect_redis(settings)
    try:
        store = tp.DomainStore(nc.jetstream(), settings.subjects, BILLING)
        await store.ensure_stream()
        await fill(store, count)
        progress("raw ordered-consumer read")
        started, read = time.perf_counter(), 0
        async for _ in read_raw(
            nc.jetstream(), store.stream, settings.subjects.domain_events("billing")
        ):
            read += 1
        raw_rate = read / (time.perf_counter() - started)
        progress("rebuild of the balance projection")

        def make(keys: tp.Keys) -> tuple[BalanceProjection, list[str]]:
            projection = BalanceProjection(settings.subjects, keys)
            return projection, projection.owned_patterns()

        rebuild = tp.RedisRebuild(make, nc, redis, store.log, settings.keys, BILLING.registry)
        result = await rebuild.run()
        return raw_rate, result.events / result.seconds
    finally:
        await redis.aclose()
        await nc.close()


def main() -> None:
    options = arguments(__doc__ or "")
    count = 100_000 if options.quick else 500_000
    with local_servers() as settings:
        raw_rate, rate = uvloop.run(measure(settings, count))
    share = rate / raw_rate
    rows = [
        Row("raw ordered-consumer read (baseline)", {"events/s": raw_rate}),
        Row("rebuild of billing's balance projection", {"events/s": rate}),
    ]
    verdicts = [
        Verdict("P9", "domain projection rebuild", rate, "events/s", ">= 60% of raw",
                share >= 0.6, raw_rate, share),
    ]  # fmt: skip
    finish(options, [table(f"P9: {count:,} billing events", rows)], verdicts)


if __name__ == "__main__":
    main()
