"""The scheduler service process: admission, fair dispatch, and the job history."""

from __future__ import annotations

import asyncio

from services.config.sdk import AsyncConfigClient
from services.runtime.app import serve, service_runtime
from services.runtime.database import create_engine, migrate
from services.runtime.localstate import resolve_database_url, resolve_redis_url
from services.runtime.settings import Settings
from services.runtime.stores.sql import SqlStore
from services.scheduler import history
from services.scheduler.dispatch import Dispatcher, make_broker
from services.scheduler.scheduler import Scheduler


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Admit and dispatch jobs, and project their history, until `stop` is set."""
    engine = create_engine(resolve_database_url(settings))
    await migrate(engine)
    try:
        async with service_runtime(settings, "scheduler") as runtime:
            projection = history.JobHistoryProjection(settings.subjects)
            tables = [history.jobs, history.attempts, history.transitions]
            runtime.project_into(SqlStore(engine, projection.name, tables), projection)
            config = AsyncConfigClient(runtime.nc, runtime.redis, settings.subjects, settings.keys)
            await config.start()
            broker = make_broker(resolve_redis_url(settings), settings.namespace)
            scheduler = Scheduler(
                runtime.nc, runtime.log, config, Dispatcher(broker), settings.pools,
                settings.default_pool,
            )  # fmt: skip
            task = asyncio.create_task(scheduler.run(stop))
            try:
                await serve(runtime, stop)
            finally:
                await task
                await config.close()
                broker.close()
    finally:
        await engine.dispose()
