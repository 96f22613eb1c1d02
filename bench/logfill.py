"""Filling a fresh log with tenants and config changes, and rebuilding from it (P2, P7)."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from bench.common import progress
from tenantplane.contracts import EVENTS
from tenantplane.contracts.config import ConfigValuesSet
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.tenants import TenantRegistered
from tenantplane.services.projections import PROJECTIONS
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.rebuild import RebuildResult, RedisRebuild
from tenantplane.services.runtime.settings import Settings

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
            await log.append_many(pending)
            total += len(pending)
            pending = []
            rate = total / (time.monotonic() - started)
            progress(f"appended {total:,} events ({rate:,.0f}/s)")
    return total


async def rebuild_config(
    nc: NATS, redis: aioredis.Redis, log: EventLog, settings: Settings
) -> RebuildResult:
    """Rebuild the config read model from the log, as `tenantctl projection rebuild config`."""
    info = PROJECTIONS["config"]
    rebuild = RedisRebuild(
        lambda keys: info.make(settings.subjects, keys), nc, redis, log, settings.keys, EVENTS
    )
    return await rebuild.run()
