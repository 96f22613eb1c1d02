"""R7: cron with three scheduler replicas and a restart: each fire time runs exactly once,
and the catch-up policy decides what runs after downtime."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from tenantplane.contracts import EVENTS
from tenantplane.contracts.jobs import JobRequested
from tenantplane.contracts.schedules import DefineSchedule, ScheduleFired
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.supervisor import Supervisor
from tenantplane.services.scheduler.schedules import CronFirer, ScheduleWrites
from tests.support.events import registered
from tests.support.reporting import report

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@contextlib.asynccontextmanager
async def firers(settings: Settings, count: int) -> AsyncIterator[None]:
    """`count` cron replicas, each on its own NATS connection."""
    stop = asyncio.Event()
    connections = [await connect_nats(settings, f"cron-{i}") for i in range(count)]
    logs = [EventLog(nc.jetstream(), settings.subjects, EVENTS) for nc in connections]
    supervisor = Supervisor(stop)
    for i, log in enumerate(logs):
        supervisor.start(f"cron-{i}", CronFirer(log, tick_s=0.1, tolerance_s=1.0).run)
    try:
        yield
        assert await supervisor.readiness() is None
    finally:
        stop.set()
        await supervisor.wait()
        for nc in connections:
            await nc.close()


async def test_three_replicas_fire_each_time_once_and_catch_up_once_after_downtime(
    settings: Settings, event_log: EventLog, long: bool
) -> None:
    # Given every-second schedules, half catching up "all" missed times, half "once"
    # (no workers run here, so overlapping jobs are allowed)
    schedules, running_s = (50, 20.0) if long else (5, 5.0)
    await event_log.append_many([registered(f"t{i}") for i in range(schedules)])
    writes = ScheduleWrites(event_log)
    for i in range(schedules):
        await writes.handle(
            DefineSchedule(
                tenant_id=f"t{i}",
                schedule_id="tick",
                cron="* * * * * *",
                kind="noop",
                catch_up="all" if i % 2 else "once",
                overlap="allow",
                actor="test",
            )
        )
    # When three replicas fire, then all stop (4 s; 10 s with --long), then one restarts
    async with firers(settings, 3):
        await asyncio.sleep(running_s)
    await asyncio.sleep(10 if long else 4)
    async with firers(settings, 1):
        await asyncio.sleep(2.5)
    # Then every fire time was recorded and requested exactly once
    fired: Counter[tuple[str, datetime]] = Counter()
    async for stored in event_log.read(event_log.subjects.all_schedules()):
        if isinstance(stored.envelope.data, ScheduleFired):
            fired[(stored.envelope.tenant_id, stored.envelope.data.fire_time)] += 1
    jobs: Counter[str] = Counter()
    async for stored in event_log.read(event_log.subjects.all_jobs()):
        if isinstance(stored.envelope.data, JobRequested):
            jobs[stored.envelope.data.job_id] += 1
    assert set(fired.values()) == {1}
    assert set(jobs.values()) == {1}
    assert len(jobs) == len(fired)
    # ... and after the downtime, "all" schedules fired every missed second, "once" ones not
    gaps = {tenant: _largest_gap([at for t, at in fired if t == tenant]) for tenant, _ in fired}
    assert all(gaps[f"t{i}"] <= 1.0 for i in range(1, schedules, 2)), gaps
    assert all(gaps[f"t{i}"] >= 3.0 for i in range(0, schedules, 2)), gaps
    report("R7", schedules=schedules, replicas=3, firings=len(fired), duplicates=0)


def _largest_gap(times: list[datetime]) -> float:
    ordered = sorted(times)
    return max((b - a).total_seconds() for a, b in itertools.pairwise(ordered))
