"""P8: appending domain events from one SDK process.

Batched: `DomainStore.append_many` of N invoice events (many tenants and
invoices, no expectations), against raw nats-py `publish_async` of the same
envelopes with the same headers, in the same run: three alternated rounds of
each, the best of each compared.
Awaited: one `DomainStore.append` at a time with an expected version, against
one awaited raw `js.publish` at a time.

    python -m bench.p8_domain_append            # 100,000 batched, 3,000 awaited
    python -m bench.p8_domain_append --quick    # 20,000 batched, 1,000 awaited

Targets (TARGETS.md): batched >= 10,000 events/s and >= 70% of raw; awaited p50
<= 2x raw.
"""

from __future__ import annotations

import time

import uvloop
from nats.js import JetStreamContext

import tenantplane as tp
from bench.common import (
    Row,
    Verdict,
    arguments,
    finish,
    local_servers,
    percentiles,
    progress,
    table,
)
from examples.billing.events import BILLING, InvoiceIssued

TENANTS = 100
ROUNDS = 3


def events(count: int, prefix: str) -> list[tuple[str, InvoiceIssued]]:
    """`count` invoices spread over tenants, each its own aggregate."""
    return [
        (
            f"t{i % TENANTS}",
            InvoiceIssued(invoice_id=f"{prefix}{i}", customer="c", amount_cents=100 + i),
        )
        for i in range(count)
    ]


async def raw_batched(
    js: JetStreamContext, settings: tp.Settings, count: int, prefix: str
) -> float:
    """Events/s of raw windowed publish_async of the same envelopes."""
    subjects = settings.subjects
    wrapped = [tp.Envelope.wrap(e, tenant_id=t, actor="bench") for t, e in events(count, prefix)]
    messages = [(subjects.for_event(e), e.to_json(), e.event_id) for e in wrapped]
    started = time.perf_counter()
    for subject, payload, event_id in messages:
        await js.publish_async(subject, payload, headers={"Nats-Msg-Id": event_id})
    await js.publish_async_completed()
    return count / (time.perf_counter() - started)


async def sdk_batched(store: tp.DomainStore, count: int, prefix: str) -> float:
    """Events/s of `append_many` (building the envelopes included)."""
    batch = events(count, prefix)
    started = time.perf_counter()
    await store.append_many(batch, actor="bench")
    return count / (time.perf_counter() - started)


async def raw_awaited(js: JetStreamContext, settings: tp.Settings, count: int) -> list[float]:
    """Milliseconds of each awaited raw publish with an expected sequence."""
    latencies, last = [], 0
    subject = settings.subjects.domain_event("billing", "t0", "invoice", "raw-awaited")
    for i in range(count):
        event = InvoiceIssued(invoice_id="raw-awaited", customer="c", amount_cents=i + 1)
        envelope = tp.Envelope.wrap(event, tenant_id="t0", actor="bench")
        headers = {
            "Nats-Msg-Id": envelope.event_id,
            "Nats-Expected-Last-Subject-Sequence": str(last),
        }
        started = time.perf_counter()
        ack = await js.publish(subject, envelope.to_json(), headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        last = ack.seq
    return latencies


async def sdk_awaited(store: tp.DomainStore, count: int) -> list[float]:
    """Milliseconds of each awaited `append` with an expected version."""
    latencies, version = [], 0
    for i in range(count):
        event = InvoiceIssued(invoice_id="sdk-awaited", customer="c", amount_cents=i + 1)
        started = time.perf_counter()
        (appended,) = await store.append("t0", [event], actor="bench", expected_version=version)
        latencies.append((time.perf_counter() - started) * 1000)
        version = appended.seq
    return latencies


async def measure(
    settings: tp.Settings, batched: int, awaited: int
) -> tuple[list[str], list[Verdict]]:
    nc = await tp.connect_nats(settings, "bench")
    try:
        store = tp.DomainStore(nc.jetstream(), settings.subjects, BILLING)
        await store.ensure_stream()
        js = nc.jetstream()
        raw_rates, sdk_rates = [], []
        for round_ in range(ROUNDS):  # alternated, best of each: the machine is noisy
            progress(f"round {round_ + 1}: raw publish_async, then append_many, {batched:,} each")
            raw_rates.append(await raw_batched(js, settings, batched, f"raw{round_}-"))
            sdk_rates.append(await sdk_batched(store, batched, f"sdk{round_}-"))
        raw_rate, sdk_rate = max(raw_rates), max(sdk_rates)
        progress(f"{awaited:,} awaited appends, raw then SDK")
        raw_p = percentiles(await raw_awaited(js, settings, awaited))
        sdk_p = percentiles(await sdk_awaited(store, awaited))
    finally:
        await nc.close()
    batched_rows = [
        Row("raw publish_async", {"events/s": raw_rate}),
        Row("DomainStore.append_many", {"events/s": sdk_rate}),
    ]
    awaited_rows = [Row("raw js.publish", raw_p), Row("DomainStore.append", sdk_p)]
    tables = [table("P8 batched", batched_rows), table("P8 awaited (ms)", awaited_rows)]
    ratio = sdk_rate / raw_rate
    return tables, [
        Verdict("P8", "batched domain append", sdk_rate, "events/s",
                ">= 10,000/s and >= 70% of raw", sdk_rate >= 10_000 and ratio >= 0.7,
                raw_rate, ratio),
        Verdict("P8", "awaited append p50", sdk_p["p50"], "ms", "<= 2x raw",
                sdk_p["p50"] <= 2 * raw_p["p50"], raw_p["p50"], sdk_p["p50"] / raw_p["p50"]),
    ]  # fmt: skip


def main() -> None:
    options = arguments(__doc__ or "")
    batched, awaited = (20_000, 1_000) if options.quick else (100_000, 3_000)
    with local_servers() as settings:
        tables, verdicts = uvloop.run(measure(settings, batched, awaited))
    finish(options, tables, verdicts)


if __name__ == "__main__":
    main()
