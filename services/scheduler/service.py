"""The scheduler service process: admission, fair dispatch, and the job history."""

from __future__ import annotations

import asyncio
from functools import partial

from nats.aio.client import Client as NATS

from tenantplane.contracts.jobs import COMMANDS as JOB_COMMANDS
from tenantplane.contracts.schedules import COMMANDS as SCHEDULE_COMMANDS
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.jobs import history
from tenantplane.services.jobs.aggregate import RetryPolicy
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.jobs.queue import make_broker
from tenantplane.services.runtime.app import serve, service_runtime
from tenantplane.services.runtime.database import migrated_database
from tenantplane.services.runtime.handlers import register
from tenantplane.services.runtime.localstate import resolve_jobs_redis_url
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.sql import SqlStore
from tenantplane.services.scheduler.commands import JobCommands
from tenantplane.services.scheduler.dispatch import Dispatcher
from tenantplane.services.scheduler.leases import LeaseListener
from tenantplane.services.scheduler.scheduler import Scheduler
from tenantplane.services.scheduler.schedules import CronFirer, ScheduleWrites
from tenantplane.services.scheduler.status import PoolStatus


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Admit and dispatch jobs, and project their history, until `stop` is set."""
    async with (
        migrated_database(settings) as engine,
        service_runtime(settings, "scheduler") as runtime,
    ):
        projection = history.JobHistoryProjection(settings.subjects)
        tables = [history.jobs, history.attempts, history.transitions]
        store = SqlStore(engine, projection.name, tables, tenant_column="tenant_id")
        runtime.project_into(store, projection)
        config = AsyncConfigClient(runtime.nc, runtime.redis, settings.subjects, settings.keys)
        await config.start()
        broker = make_broker(resolve_jobs_redis_url(settings), settings.namespace)
        writes = ScheduleWrites(runtime.log)
        dispatcher = Dispatcher(
            broker, partial(_announce, runtime.nc, settings.subjects), taken_s=settings.job_lease_s
        )
        scheduler = Scheduler(
            runtime.log,
            config,
            dispatcher,
            settings.pools,
            settings.default_pool,
            dedicated_capacity=settings.dedicated_pool_capacity,
            lease_s=settings.job_lease_s,
            audit_s=settings.job_queue_audit_s,
            retry=RetryPolicy(settings.job_retry_base_s, settings.job_retry_max_s),
        )
        if settings.serve_only != "projections":  # else another process schedules
            runtime.checks["scheduler"] = scheduler.readiness
        status = PoolStatus(scheduler.board, scheduler.capacity, dispatcher, scheduler.kinds)
        runtime.sources.append(status.samples)
        for command_cls in SCHEDULE_COMMANDS:
            register(runtime.broker, settings.subjects, command_cls, writes.handle)
        jobs = JobCommands(
            JobLog(runtime.log, actor="scheduler"), config, scheduler.kinds,
            settings.default_pool, scheduler.requested,
        )  # fmt: skip
        for command_cls in JOB_COMMANDS:
            register(runtime.broker, settings.subjects, command_cls, jobs.handle)
        runtime.supervise("scheduler", scheduler.run)
        runtime.supervise(
            "leases",
            LeaseListener(
                runtime.nc, settings.subjects, scheduler.leases, scheduler.kinds, scheduler.ended
            ).run,
        )
        runtime.supervise("cron", CronFirer(runtime.log).run)
        runtime.supervise("pool-status", partial(status.serve, runtime.nc, settings.subjects))
        try:
            await serve(runtime, stop)
        finally:
            await config.close()
            broker.close()


async def _announce(nc: NATS, subjects: Subjects, pool: str) -> None:
    """Wake `pool`'s idle workers: attempts were queued (see `jobs.queue`)."""
    await nc.publish(subjects.job_queued(pool))
