"""The pool reconciler as a service: the local backend in `tenantctl dev up`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenantplane.contracts import EVENTS
from tenantplane.services.config import PROJECTION as CONFIG_PROJECTION
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.pools.desired import PoolSpec
from tenantplane.services.pools.local import LocalPools
from tenantplane.services.pools.reconciler import PoolBackend, PoolReconciler
from tenantplane.services.projections import PROJECTIONS
from tenantplane.services.runtime.app import supervisor_for
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.ops import announced, nats_connected, redis_answers
from tenantplane.services.runtime.readyourwrites import checkpoint
from tenantplane.services.runtime.settings import Settings

EXAMPLE_KINDS = "tenantplane.services.worker.examples:KINDS"


def reconciler_for(
    settings: Settings,
    reader: ConfigReader,
    backend: PoolBackend,
    interval_s: float = 30.0,
    log: EventLog | None = None,
) -> PoolReconciler:
    """A reconciler of the settings' installation: its static pools, dedicated pools' shape.

    With the event log, it withholds deletes while the config read model is behind it.
    """
    template = PoolSpec("", replicas=1, threads=max(1, settings.dedicated_pool_capacity))
    behind = None if log is None else read_model_behind(log, reader)
    return PoolReconciler(
        reader, backend, settings.pools, template, interval_s=interval_s, behind=behind
    )


def read_model_behind(log: EventLog, reader: ConfigReader) -> Callable[[], Awaitable[str | None]]:
    """Why the config read model is not complete and current (None when it is)."""
    filters = PROJECTIONS[CONFIG_PROJECTION].filters(log.subjects)

    async def behind() -> str | None:
        applied = await checkpoint(reader.redis, reader.keys, CONFIG_PROJECTION)
        if applied == 0:
            return "the config read model is empty (no checkpoint)"
        lag = await log.pending(filters, applied)
        return f"the config read model is {lag} events behind" if lag else None

    return behind


async def run_reconciler(
    settings: Settings, stop: asyncio.Event, backend: PoolBackend, interval_s: float = 30.0
) -> None:
    """Reconcile `backend` until `stop` is set."""
    nc = await connect_nats(settings, "tenantplane-pools")
    redis = connect_redis(settings)
    try:
        event_log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
        reconciler = reconciler_for(
            settings, ConfigReader(redis, settings.keys), backend, interval_s, event_log
        )
        supervisor = supervisor_for(settings, stop)
        supervisor.start(
            "pools.reconciler", lambda loop: reconciler.run(nc, settings.subjects, loop)
        )
        checks = {
            "nats": nats_connected(nc),
            "redis": redis_answers(redis),
            "loops": supervisor.readiness,
        }
        try:
            async with announced(
                nc, settings.subjects, "pools", checks, lambda: {"loops": supervisor.details()}
            ):
                await stop.wait()
        finally:
            await supervisor.wait()
            await backend.close()
    finally:
        await redis.aclose()
        await nc.close()


async def run_local(
    settings: Settings,
    stop: asyncio.Event,
    pool_settings: Callable[[str], Settings] | None = None,
) -> None:
    """Dedicated pools as local worker processes, with the example job kinds; each
    pool's processes get `pool_settings(pool)` (default: `settings`)."""
    backend = LocalPools(pool_settings or settings, EXAMPLE_KINDS)
    await run_reconciler(settings, stop, backend, 5.0)
