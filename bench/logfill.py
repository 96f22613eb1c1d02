"""Filling a fresh log with tenants and config changes, fast, for the rebuild benchmarks."""

from __future__ import annotations

import time

from bench.common import progress
from contracts.config import ConfigValuesSet
from contracts.envelope import Envelope
from contracts.tenants import TenantRegistered
from services.runtime.eventlog import EventLog

CHUNK = 20_000


def tenant_events(tenant: str, sets: int, keys: int, serial: int) -> list[Envelope]:
    """One tenant's registration and `sets` config changes of `keys` keys each."""
    events = [
        Envelope.wrap(TenantRegistered(display_name=tenant, plan="standard"), tenant_id=tenant,
                      actor="bench")
    ]  # fmt: skip
    for s in range(sets):
        values = {f"app.key{k}": serial + s * keys + k for k in range(keys)}
        events.append(
            Envelope.wrap(ConfigValuesSet(values=values), tenant_id=tenant, actor="bench")
        )
    return events


async def fill(log: EventLog, tenants: int, sets: int, keys: int) -> int:
    """Append `tenants` x (1 + `sets`) events; returns how many."""
    total, pending = 0, []
    started = time.monotonic()
    for t in range(tenants):
        pending += tenant_events(f"t{t}", sets, keys, t)
        if len(pending) >= CHUNK or t == tenants - 1:
            await log.append_many(pending, window=1024)
            total += len(pending)
            pending = []
            rate = total / (time.monotonic() - started)
            progress(f"appended {total:,} events ({rate:,.0f}/s)")
    return total
