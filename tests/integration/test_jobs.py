"""Jobs end to end: real NATS and Redis, the scheduler and a dramatiq worker pool."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts.commands import ErrorCode
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.jobs import (
    JobFailed,
    JobRequested,
    JobScheduled,
    JobStarted,
    JobSucceeded,
    LeaseRenewal,
    SubmitJob,
)
from tenantplane.contracts.tenants import SuspendTenant
from tenantplane.services.cli.pool import pool_status
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.jobs import history
from tenantplane.services.jobs.aggregate import Job, JobStatus, evolve, job_id_for
from tenantplane.services.jobs.client import JobClient
from tenantplane.services.jobs.history import JobHistory, JobHistoryProjection
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.jobs.queue import make_broker, queue_name
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.database import database
from tenantplane.services.runtime.errors import InvalidTransition, JobNotFound, UnknownJobKind
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.projector import Projector
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.sql import SqlStore
from tenantplane.services.scheduler import service as scheduler_service
from tenantplane.services.scheduler.commands import JobCommands
from tenantplane.services.scheduler.dispatch import Dispatcher
from tenantplane.services.scheduler.scheduler import Scheduler
from tenantplane.services.worker.pool import run_pool
from tests.support.cli import ACTOR, send_and_wait, tenantctl
from tests.support.jobs import KINDS, onboard, wait_for_status
from tests.support.running import eventually, running
from tests.support.services import in_background

pytestmark = pytest.mark.integration
DONE = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED)


async def events_of(event_log: EventLog, tenant: str, job_id: str) -> list[str]:
    return [e.envelope.type async for e in event_log.read(event_log.subjects.job(tenant, job_id))]


async def test_a_queue_message_delivered_again_does_not_run_the_job_twice(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    """The message carries the scheduled job; a stale copy must not start it again."""
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(event_log)
    submitted = await jobs.submit("acme", "noop")
    await wait_for_status(jobs, "acme", submitted.job_id, JobStatus.SUCCEEDED)
    scheduled = [
        e
        async for e in event_log.read(event_log.subjects.job("acme", submitted.job_id))
        if isinstance(e.envelope.data, JobScheduled)
    ]
    job = replace(
        await jobs.get("acme", submitted.job_id),
        status=JobStatus.SCHEDULED, attempt=1, version=scheduled[0].seq,
    )  # fmt: skip
    broker = make_broker(job_settings.redis_url, job_settings.namespace)
    try:
        await Dispatcher(broker).enqueue([job])  # the same attempt, as first queued
        await asyncio.sleep(1.0)
    finally:
        broker.close()
    assert (await events_of(event_log, "acme", submitted.job_id)).count("job.started") == 1
    assert (await jobs.get("acme", submitted.job_id)).status is JobStatus.SUCCEEDED


async def test_attempts_are_queued_together_even_after_redis_forgot_its_scripts(
    job_settings: Settings,
) -> None:
    broker = make_broker(job_settings.redis_url, job_settings.namespace)
    dispatcher = Dispatcher(broker)
    attempts = [_scheduled("acme", f"j{i}") for i in range(3)]
    try:
        # Given Redis has forgotten the queue's scripts (as after a restart)
        await asyncio.to_thread(broker.client.script_flush)
        # When attempts are queued, then each is in the pool's queue, once
        await dispatcher.enqueue(attempts)
        assert await dispatcher.lost(attempts) == []
        assert await dispatcher.depth("default") == 3
    finally:
        broker.close()


async def test_an_attempt_taken_from_its_queue_and_not_started_is_lost_after_a_lease(
    job_settings: Settings,
) -> None:
    broker = make_broker(job_settings.redis_url, job_settings.namespace)
    now = [100.0]
    dispatcher = Dispatcher(broker, taken_s=15.0, clock=lambda: now[0])
    taken, waiting = _scheduled("acme", "j1"), _scheduled("acme", "j2")
    try:
        # Given two queued attempts, the first taken by a fetch whose reply was lost
        await dispatcher.enqueue([taken, waiting])
        assert len(await asyncio.to_thread(broker.do_fetch, queue_name("default"), 1)) == 1
        # When the audit looks within a lease of first seeing it taken, nothing is lost
        assert await dispatcher.lost([taken, waiting]) == []
        now[0] += 14.9
        assert await dispatcher.lost([taken, waiting]) == []
        # Then a lease after, the taken one is
        now[0] += 0.1
        assert await dispatcher.lost([taken, waiting]) == [taken]
        # And queued again, it waits in its queue, its time afresh once taken again
        await dispatcher.enqueue([taken])
        assert await dispatcher.lost([taken, waiting]) == []
        assert await dispatcher.depth("default") == 2
        assert len(await asyncio.to_thread(broker.do_fetch, queue_name("default"), 2)) == 2
        assert await dispatcher.lost([taken, waiting]) == []
        now[0] += 15.0
        assert await dispatcher.lost([taken, waiting]) == [taken, waiting]
    finally:
        broker.close()


def _scheduled(tenant: str, job_id: str) -> Job:
    request = Envelope.wrap(JobRequested(job_id=job_id, kind="noop"), tenant_id=tenant, actor="t")
    job = evolve(None, StoredEvent(1, "job", request))
    return job.updated(status=JobStatus.SCHEDULED, pool="default", attempt=1, version=2)


async def test_an_idle_worker_is_woken_when_its_pool_gets_an_attempt(
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, job_settings, "acme")
    # Given a worker that, unless woken, looks at its queue every 30 s, and is idle
    slow_poll = job_settings.model_copy(update={"worker_poll_ms": 30_000})
    async with in_background(lambda stop: run_pool(slow_poll, stop, "default", KINDS, 2)):
        await asyncio.sleep(1.0)
        # When a job is queued, then the worker runs it well before its next poll
        jobs = JobLog(event_log)
        submitted = await jobs.submit("acme", "noop")
        await wait_for_status(jobs, "acme", submitted.job_id, JobStatus.SUCCEEDED, timeout=10)


async def test_a_worker_stopped_mid_job_appends_its_end_before_it_exits(
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    job_settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, job_settings, "acme")
    jobs = JobLog(event_log)
    # Given a worker running a job of half a second
    async with in_background(lambda stop: run_pool(job_settings, stop, "default", KINDS, 2)):
        submitted = await jobs.submit("acme", "nap", {"seconds": 0.5})
        await wait_for_status(jobs, "acme", submitted.job_id, JobStatus.RUNNING, timeout=10)
    # When it is stopped, then by the time it has exited the job's end is in the log
    job = await jobs.get("acme", submitted.job_id)
    assert job.status is JobStatus.SUCCEEDED


async def test_a_job_runs_with_its_tenants_config_and_each_transition_is_an_event(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme", rate_limit=7)
    await client.send(SetConfig(tenant_id="acme", values={"secret.token": "t0k"}, **ACTOR))
    jobs = JobLog(event_log)
    submitted = await jobs.submit("acme", "echo.config", {"key": "rate_limit"})
    job = await wait_for_status(jobs, "acme", submitted.job_id, *DONE)
    assert job.status is JobStatus.SUCCEEDED
    assert job.pool == "default"
    assert await events_of(event_log, "acme", submitted.job_id) == [
        "job.requested",
        "job.scheduled",
        "job.started",
        "job.succeeded",
    ]
    last = await event_log.last_event(event_log.subjects.job("acme", submitted.job_id))
    assert last is not None
    assert isinstance(last.envelope.data, JobSucceeded)
    expected = {"tenant": "acme", "value": 7, "secrets": {"secret.token": "t0k"}}
    assert last.envelope.data.result == expected


async def test_the_same_idempotency_key_never_makes_a_second_job(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(event_log)
    first = await jobs.submit("acme", "noop", idempotency_key="nightly-2026-11-23")
    again = await jobs.submit("acme", "noop", idempotency_key="nightly-2026-11-23")
    assert (again.job_id, again.duplicate) == (first.job_id, True)
    await wait_for_status(jobs, "acme", first.job_id, *DONE)
    assert (await events_of(event_log, "acme", first.job_id)).count("job.started") == 1


async def test_retries_then_success_show_each_attempt_and_endless_failure_is_dead_lettered(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(event_log)
    recovers = await jobs.submit("acme", "flaky", {"fail_times": 2}, max_attempts=3)
    hopeless = await jobs.submit("acme", "flaky", {"fail_times": 9}, max_attempts=2)
    ok = await wait_for_status(jobs, "acme", recovers.job_id, *DONE)
    dead = await wait_for_status(jobs, "acme", hopeless.job_id, *DONE)
    assert (ok.status, ok.attempt) == (JobStatus.SUCCEEDED, 3)
    assert (await events_of(event_log, "acme", recovers.job_id)).count("job.started") == 3
    assert (dead.status, dead.attempt) == (JobStatus.DEAD, 2)
    assert "failing attempt 2 on purpose" in dead.error


async def test_cancelling_a_queued_job_prevents_it_and_a_running_one_stops_at_its_next_check(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme", **{"jobs.max_concurrency": 1})
    jobs = JobLog(event_log)
    running = await jobs.submit("acme", "slow", {"seconds": 30})
    queued = await jobs.submit("acme", "noop")  # waits: the tenant runs one job at a time
    await wait_for_status(jobs, "acme", running.job_id, JobStatus.RUNNING)
    await jobs.cancel("acme", queued.job_id)
    await jobs.cancel("acme", running.job_id)
    assert (await wait_for_status(jobs, "acme", queued.job_id, *DONE)).status is JobStatus.CANCELLED
    assert (
        await wait_for_status(jobs, "acme", running.job_id, *DONE)
    ).status is JobStatus.CANCELLED
    assert "job.started" not in await events_of(event_log, "acme", queued.job_id)


async def test_a_suspended_tenants_jobs_are_not_run(
    job_settings: Settings,
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    # Given jobs queued while no worker runs, then the tenant is suspended
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(event_log)
    queued = [await jobs.submit("acme", "noop") for _ in range(12)]
    await wait_for_status(jobs, "acme", queued[0].job_id, JobStatus.SCHEDULED)
    await send_and_wait(client, redis, settings, SuspendTenant(tenant_id="acme", **ACTOR))
    refused = await jobs.submit("acme", "noop")
    # When a worker starts
    async with in_background(lambda stop: run_pool(job_settings, stop, "default", KINDS, 2)):
        late = await wait_for_status(jobs, "acme", refused.job_id, *DONE)
        first = await wait_for_status(jobs, "acme", queued[0].job_id, *DONE)
        await asyncio.sleep(0.5)
    # Then nothing ran: queued attempts are refused by the worker, new ones at admission
    assert "is suspended" in late.error
    assert (first.status, first.error) == (JobStatus.FAILED, "tenant acme is suspended")
    for job in queued:
        assert "job.started" not in await events_of(event_log, "acme", job.job_id)


@pytest.mark.parametrize("submitted_by", ["log", "command"])
async def test_a_noisy_tenants_flood_does_not_hold_back_a_quiet_tenant(
    submitted_by: str,
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    nc: NATS,
    event_log: EventLog,
) -> None:
    # Given a tenant that floods 5,000 jobs, then a quiet tenant that submits 10, straight
    # into the log or by command (then the scheduler has them before it reads the flood)
    limits = {"jobs.max_concurrency": 8, "jobs.rate_per_minute": 1_000_000}
    await onboard(client, redis, settings, "noisy", "quiet", **limits)
    jobs = JobLog(event_log)
    submits = jobs if submitted_by == "log" else JobClient(nc, settings.subjects)
    flood = [
        Envelope.wrap(
            JobRequested(job_id=job_id_for("noisy", f"n{i}"), kind="noop"),
            tenant_id="noisy",
            actor="test",
        )
        for i in range(5000)
    ]
    await event_log.append_many(flood)
    quiet = [await submits.submit("quiet", "noop") for _ in range(10)]
    # When the quiet tenant's jobs are done
    for submitted in quiet:
        await wait_for_status(jobs, "quiet", submitted.job_id, *DONE, timeout=60)
    # Then most of the flood is still waiting: the quiet jobs did not queue behind it
    started = 0
    async for stored in event_log.read(event_log.subjects.tenant_jobs("noisy")):
        started += isinstance(stored.envelope.data, JobStarted)
    assert started < 2500


async def test_cli_submits_and_waits_then_shows_each_transition_and_lists_at_80_columns(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme")
    narrow = {"COLUMNS": "80"}
    # When a job failing once is submitted with --wait
    submitted = await asyncio.to_thread(
        tenantctl, settings, "job", "submit", "acme", "flaky", "-a", "fail_times=1", "--wait",
        env=narrow,
    )  # fmt: skip
    # Then the command ends with the job, and prints its result
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[2]
    assert f'job {job_id} succeeded: {{"attempt": 2}}' in submitted.stdout
    # And show prints each transition, in words, from the log
    shown = await asyncio.to_thread(
        tenantctl, settings, "job", "show", "acme", job_id, "-o", "json"
    )
    found = json.loads(shown.stdout)
    assert (found["status"], found["attempt"], found["result"]) == ("succeeded", 2, {"attempt": 2})
    assert [t["event"] for t in found["transitions"]] == [
        "requested", "scheduled", "started", "failed", "scheduled", "started", "succeeded",
    ]  # fmt: skip
    details = [t["detail"] for t in found["transitions"]]
    assert details[1] == "queued in pool default"
    assert details[3].startswith("RuntimeError: failing attempt 1 on purpose (retry at ")
    assert details[6] == '{"attempt":2}'
    # And at 80 columns neither show nor list cut a line or a job id
    table = await asyncio.to_thread(tenantctl, settings, "job", "show", "acme", job_id, env=narrow)
    assert job_id in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80

    async def listed() -> list[dict[str, Any]]:
        found = await asyncio.to_thread(
            tenantctl, settings, "job", "list", "--tenant", "acme", "--status", "succeeded",
            "-o", "json",
        )  # fmt: skip
        rows: list[dict[str, Any]] = json.loads(found.stdout)
        return rows

    await eventually(listed)  # the history has the job
    rows = await listed()
    assert [(j["job_id"], j["attempts"], j["result"]) for j in rows] == [
        (job_id, 2, {"attempt": 2})
    ]
    table = await asyncio.to_thread(tenantctl, settings, "job", "list", env=narrow)
    assert job_id in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    # And a rebuilt history is the same
    rebuilt = await asyncio.to_thread(
        tenantctl, settings, "projection", "rebuild", "jobs", "--tenant", "acme", "-o", "json"
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert await listed() == rows
    status = await asyncio.to_thread(tenantctl, settings, "projection", "status", "-o", "json")
    jobs = [r for r in json.loads(status.stdout) if r["projection"] == "jobs"]
    assert [(r["store"], r["running"]) for r in jobs] == [("sql", True)]
    pools = await asyncio.to_thread(tenantctl, settings, "pool", "list", "-o", "json")
    assert json.loads(pools.stdout)[0]["pool"] == "default"


async def test_watching_a_job_follows_its_progress_to_its_outcome(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    nc: NATS,
) -> None:
    await onboard(client, redis, settings, "acme")
    jobs = JobClient(nc, settings.subjects, actor="test")
    # Given a job reporting its progress in steps, and one that fails for good
    stepping = await jobs.submit("acme", "steps", {"count": 4, "pause_s": 0.2})
    hopeless = await jobs.submit("acme", "flaky", {"fail_times": 9}, max_attempts=1)
    # When each is watched from the CLI
    watched = await asyncio.to_thread(tenantctl, settings, "job", "watch", "acme", stepping.job_id)
    # Then the watch ends with the job: exit 0 and its result
    assert watched.returncode == 0, watched.stderr
    assert f'job {stepping.job_id} succeeded: {{"steps": 4}}' in watched.stdout
    failed = await asyncio.to_thread(
        tenantctl, settings, "job", "watch", "acme", hopeless.job_id, "-o", "json"
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "dead_lettered"
    # And the SDK follows the same states, every progress report in order
    again = await jobs.submit("acme", "steps", {"count": 3, "pause_s": 0.1})
    seen = [(job.status.value, job.progress) async for job in jobs.follow("acme", again.job_id)]
    progress = [p for status, p in seen if status == "running"]
    assert progress == sorted(progress)
    assert seen[-1] == ("succeeded", 1.0)
    done = await jobs.wait("acme", again.job_id, timeout=10)
    assert done.result == {"steps": 3}


async def test_job_history_projects_the_same_on_every_database(
    sql_engine: AsyncEngine, nc: NATS, settings: Settings, event_log: EventLog
) -> None:
    # Given a job's whole life in the log
    job_id, events = "j-1", []
    for data in (
        JobRequested(job_id=job_id, kind="noop"),
        JobScheduled(job_id=job_id, pool="default", attempt=1),
        JobStarted(job_id=job_id, attempt=1, worker="w"),
        JobFailed(job_id=job_id, attempt=1, error="boom", retry_at=datetime.now(UTC)),
        JobScheduled(job_id=job_id, pool="default", attempt=2),
        JobStarted(job_id=job_id, attempt=2, worker="w"),
        JobSucceeded(job_id=job_id, attempt=2),
    ):
        events.append(Envelope.wrap(data, tenant_id="acme", actor="test"))
    appended = await event_log.append_many(events)
    # When the history projection runs on this database
    projection = JobHistoryProjection(settings.subjects)
    store = SqlStore(
        sql_engine, projection.name, [history.jobs, history.attempts, history.transitions]
    )
    projector = Projector(
        projection, store, nc, subjects=settings.subjects, registry=event_log.registry
    )
    async with running(projector):
        await projector.wait_for(appended[-1].seq)
    # Then the job, its two attempts and its seven transitions are there
    shown = await JobHistory(sql_engine).show("acme", job_id)
    assert shown is not None
    assert (shown["status"], shown["attempts"]) == ("succeeded", 2)
    assert [(a["attempt"], a["outcome"]) for a in shown["attempt_rows"]] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert len(shown["transitions"]) == 7
    # And its row is the fold of its events, on this database too
    assert await _history_is(sql_engine, await _folded(event_log, "acme"))


async def test_one_idempotency_key_used_by_two_tenants_makes_two_jobs(event_log: EventLog) -> None:
    jobs = JobLog(event_log)
    acme = await jobs.submit("acme", "noop", idempotency_key="nightly")
    beta = await jobs.submit("beta", "noop", idempotency_key="nightly")
    assert acme.job_id != beta.job_id
    assert not acme.duplicate
    assert not beta.duplicate
    assert (await jobs.get("beta", beta.job_id)).kind == "noop"


async def test_cli_schedules_fire_jobs_and_stop_when_paused(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return tenantctl(settings, "schedule", *args)

    added = await asyncio.to_thread(
        cli, "add", "acme", "tick", "--cron", "* * * * * *", "--kind", "noop", "--overlap", "allow"
    )
    assert added.returncode == 0, added.stderr
    bad = await asyncio.to_thread(
        cli, "add", "acme", "bad", "--cron", "61 * * * *", "--kind", "noop"
    )
    assert bad.returncode == 2
    assert "not a cron expression" in bad.stderr

    async def succeeded() -> int:
        done = 0
        async for stored in event_log.read(event_log.subjects.tenant_jobs("acme")):
            done += isinstance(stored.envelope.data, JobSucceeded)
        return done

    await eventually(lambda: _at_least(succeeded, 2), timeout=15)
    listed = json.loads((await asyncio.to_thread(cli, "list", "-o", "json")).stdout)
    assert [(s["id"], s["status"]) for s in listed] == [("tick", "active")]
    assert listed[0]["last_fire"] is not None
    table = await asyncio.to_thread(tenantctl, settings, "schedule", "list", env={"COLUMNS": "80"})
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    assert "* * * * * *" in table.stdout
    assert (await asyncio.to_thread(cli, "pause", "acme", "tick")).returncode == 0
    await asyncio.sleep(1.5)
    after_pause = await succeeded()
    await asyncio.sleep(2)
    assert await succeeded() <= after_pause + 1  # at most one firing was already in flight
    assert (await asyncio.to_thread(cli, "rm", "acme", "tick")).returncode == 0
    assert json.loads((await asyncio.to_thread(cli, "list", "-o", "json")).stdout) == []


async def _at_least(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() >= wanted


async def test_a_scheduler_restart_mid_flow_loses_and_doubles_nothing_and_history_is_the_fold(
    job_settings: Settings,
    service: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    # Given 150 jobs, a fifth of them failing once (retried), and five cancelled while queued
    await onboard(client, redis, settings, "acme", **{"jobs.rate_per_minute": 1_000_000})
    jobs = JobLog(event_log)
    submitted = [
        await jobs.submit("acme", "flaky", {"fail_times": int(i % 5 == 0)}) for i in range(150)
    ]
    cancelled = [(await jobs.submit("acme", "noop", not_before=_later())).job_id for _ in range(5)]
    for job_id in cancelled:
        await jobs.cancel("acme", job_id)
    async with in_background(lambda stop: run_pool(job_settings, stop, "default", KINDS, 4)):
        # When the scheduler runs, is stopped mid-flow, and a new one takes over
        async with in_background(lambda stop: scheduler_service.run(job_settings, stop)):
            await asyncio.sleep(0.4)
        async with in_background(lambda stop: scheduler_service.run(job_settings, stop)):
            for done in submitted:
                await wait_for_status(jobs, "acme", done.job_id, *DONE, timeout=60)
            for job_id in cancelled:
                await wait_for_status(jobs, "acme", job_id, JobStatus.CANCELLED)
            # Then every job's history row is the fold of its events, field for field
            folded = await _folded(event_log, "acme")
            async with database(job_settings) as engine:
                await eventually(lambda: _history_is(engine, folded), timeout=20)
    # And every job started once per attempt, and every one of them succeeded in the end
    started: Counter[tuple[str, int]] = Counter()
    async for stored in event_log.read(event_log.subjects.tenant_jobs("acme")):
        if isinstance(stored.envelope.data, JobStarted):
            started[(stored.envelope.data.job_id, stored.envelope.data.attempt)] += 1
    assert len({job_id for job_id, _ in started}) == 150
    assert set(started.values()) == {1}
    assert {folded[s.job_id]["status"] for s in submitted} == {"succeeded"}
    assert sum(folded[s.job_id]["attempts"] == 2 for s in submitted) == 30


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


async def _folded(event_log: EventLog, tenant: str) -> dict[str, dict[str, Any]]:
    """Each of a tenant's jobs as its history row should be: the fold of its events."""
    folded: dict[str, Job] = {}
    async for stored in event_log.read(event_log.subjects.tenant_jobs(tenant)):
        job_id = getattr(stored.envelope.data, "job_id", "")
        folded[job_id] = evolve(folded.get(job_id), stored)
    return {job_id: history.row_of(job) for job_id, job in folded.items()}


async def _history_is(engine: AsyncEngine, folded: dict[str, dict[str, Any]]) -> bool:
    columns = [history.jobs.c[name] for name in history.COLUMNS]
    async with engine.connect() as conn:
        rows = await conn.execute(select(history.jobs.c.job_id, *columns))
        found = {row[0]: dict(zip(history.COLUMNS, row[1:], strict=True)) for row in rows}
    return _digest(found) == _digest(folded)


def _digest(rows: dict[str, dict[str, Any]]) -> str:
    """A digest of history rows, times compared as instants whatever the database keeps."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        return value

    text = json.dumps(
        {job: {k: plain(v) for k, v in row.items()} for job, row in rows.items()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


async def test_an_attempt_over_its_time_limit_is_interrupted_and_fails(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme")
    jobs = JobLog(event_log)
    submitted = await jobs.submit("acme", "slow", {"seconds": 30}, timeout_s=0.5, max_attempts=1)
    job = await wait_for_status(jobs, "acme", submitted.job_id, *DONE)
    assert job.status is JobStatus.DEAD
    assert job.error == "timed out after 0.5s"


async def test_submit_and_cancel_are_commands_and_a_retried_submit_makes_one_job(
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    nc: NATS,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme")
    jobs = JobClient(nc, settings.subjects, actor="billing@test")
    # When a submit is sent twice with one idempotency key (no worker runs the job)
    first = await jobs.submit("acme", "slow", {"seconds": 30}, idempotency_key="nightly-1")
    again = await jobs.submit("acme", "slow", {"seconds": 30}, idempotency_key="nightly-1")
    # Then it is one job, requested once, by the caller
    assert (again.job_id, again.seq, again.duplicate) == (first.job_id, first.seq, True)
    assert not first.duplicate
    history = [e async for e in event_log.read(event_log.subjects.job("acme", first.job_id))]
    assert [e.envelope.type for e in history].count("job.requested") == 1
    assert history[0].envelope.actor == "billing@test"
    # And a cancel, also a command, is recorded once however often it is asked for
    assert (await jobs.cancel("acme", first.job_id, reason="not needed")).cancel_requested
    assert (await jobs.cancel("acme", first.job_id)).cancel_requested
    history = [e async for e in event_log.read(event_log.subjects.job("acme", first.job_id))]
    assert [e.envelope.type for e in history].count("job.cancel_requested") == 1
    # And a malformed one never leaves the client
    with pytest.raises(ValidationError, match="kind"):
        await jobs.submit("acme", "No Such Kind")
    # And a job not finished cannot be retried
    with pytest.raises(InvalidTransition):
        await jobs.retry("acme", first.job_id)
    # And once finished (refused: no such tenant), a retry is a new job of the same spec
    refused = await jobs.submit("ghost", "slow", {"seconds": 30})
    await JobLog(event_log).wait("ghost", refused.job_id, timeout=10)
    retried = await asyncio.to_thread(
        tenantctl, settings, "job", "retry", "ghost", refused.job_id, "-r", "try again",
        "-o", "json",
    )  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    new = await jobs.get("ghost", json.loads(retried.stdout)["job_id"])
    assert (new.kind, new.args, new.job_id != refused.job_id) == ("slow", {"seconds": 30}, True)
    events = [e async for e in event_log.read(event_log.subjects.job("ghost", new.job_id))]
    assert events[0].envelope.reason == f"retry of {refused.job_id}: try again"


async def test_an_unknown_job_is_job_not_found_for_the_client_and_the_cli(
    scheduler: None, event_log: EventLog, settings: Settings
) -> None:
    # Given no job j-404 for acme
    # When it is asked for, through the job client and the CLI
    with pytest.raises(JobNotFound) as raised:
        await JobLog(event_log).get("acme", "j-404")
    shown = await asyncio.to_thread(tenantctl, settings, "job", "show", "acme", "j-404")
    cancelled = await asyncio.to_thread(tenantctl, settings, "job", "cancel", "acme", "j-404")
    # Then it is job_not_found by name, with what was asked for, and the CLI refuses
    assert raised.value.code is ErrorCode.JOB_NOT_FOUND
    assert raised.value.details == {"tenant_id": "acme", "job_id": "j-404"}
    for result in (shown, cancelled):
        assert result.returncode == 1
        assert result.stderr.strip() == "error: job_not_found: no job j-404 for tenant acme"


async def test_a_kind_no_worker_of_the_pool_runs_is_refused_with_nothing_appended(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    nc: NATS,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, settings, "acme")

    # Given the default pool's worker has been heard: its kinds show in `pool list`
    await eventually(lambda: _default_pool_heard(settings), timeout=10)
    jobs = JobClient(nc, settings.subjects, actor="test")
    # When a kind none of its workers runs is submitted
    with pytest.raises(UnknownJobKind) as refused:
        await jobs.submit("acme", "no.such.kind", idempotency_key="k1")
    # Then it is refused by name, saying what the pool runs, and nothing is in the log
    assert (refused.value.details["kind"], refused.value.details["pool"]) == (
        "no.such.kind",
        "default",
    )
    assert "noop" in refused.value.details["served"]
    assert await events_of(event_log, "acme", job_id_for("acme", "k1")) == []
    # And the CLI says so in one line, exit 1
    cli = await asyncio.to_thread(tenantctl, settings, "job", "submit", "acme", "no.such.kind")
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines() == [
        "error: unknown_job_kind: no worker of pool default runs jobs of kind 'no.such.kind' "
        f"(it runs: {', '.join(KINDS.names())})"
    ]
    # And a kind it runs is accepted
    assert (await jobs.submit("acme", "noop")).duplicate is False


async def test_a_commanded_submit_is_on_the_schedulers_board_before_its_intake_reads_it(
    scheduler: None,
    client: CommandClient,
    redis: aioredis.Redis,
    job_settings: Settings,
    nc: NATS,
    event_log: EventLog,
) -> None:
    await onboard(client, redis, job_settings, "acme")
    # Given a scheduler whose loop does not run: its intake reads nothing
    config = AsyncConfigClient(nc, redis, job_settings.subjects, job_settings.keys)
    broker = make_broker(job_settings.redis_url, job_settings.namespace)
    idle = Scheduler(event_log, config, Dispatcher(broker), {"default": 8}, "default")
    commands = JobCommands(
        JobLog(event_log, actor="scheduler"), config, idle.kinds, "default", idle.requested
    )
    try:
        # When it serves a submit
        submit = SubmitJob(tenant_id="acme", kind="noop", idempotency_key="k1", actor="t")
        job_id = (await commands.handle(submit)).result["job_id"]  # type: ignore[index]
        # Then the job is on its board at once, waiting for admission
        assert [j.job_id for j in idle.board.to_admit()] == [job_id]
        # And the request read from the log later changes nothing
        (request,) = [e async for e in event_log.read(event_log.subjects.job("acme", job_id))]
        assert idle.board.apply(request) is None
        # And a submit served again (a duplicate) is not put on the board twice
        idle.board.clear()
        assert (await commands.handle(submit)).replayed
        assert idle.board.jobs == {}
    finally:
        broker.close()


async def test_a_worker_says_at_once_which_attempts_it_ended(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    nc: NATS,
) -> None:
    await onboard(client, redis, settings, "acme")
    heard: list[LeaseRenewal] = []

    async def hear(msg: Msg) -> None:
        heard.append(LeaseRenewal.model_validate_json(msg.data))

    sub = await nc.subscribe(settings.subjects.job_leases("default"), cb=hear)
    try:
        # When a job runs (heartbeats are a lease's third apart: 5 s)
        submitted = await JobClient(nc, settings.subjects).submit("acme", "noop")

        # Then, right after it ends, its worker names the attempt as ended
        async def named() -> bool:
            ended = {(a.job_id, a.attempt) for r in heard for a in r.ended}
            return (submitted.job_id, 1) in ended

        await eventually(named, timeout=4)
    finally:
        await sub.unsubscribe()


async def _default_pool_heard(settings: Settings) -> bool:
    """Whether the scheduler has heard the default pool's worker name its kinds."""
    return any(r["pool"] == "default" and r["kinds"] for r in await pool_status(settings))


async def test_assigning_a_pool_whose_workers_lack_a_scheduled_kind_warns(
    worker: None,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
) -> None:
    await onboard(client, redis, settings, "acme")
    await asyncio.to_thread(
        tenantctl, settings, "schedule", "add", "acme", "nightly", "--cron", "0 2 * * *",
        "--kind", "report.unheard.of",
    )  # fmt: skip

    await eventually(lambda: _default_pool_heard(settings), timeout=10)
    assigned = await asyncio.to_thread(tenantctl, settings, "pool", "assign", "acme", "default")
    assert assigned.returncode == 0, assigned.stderr
    assert "warning: pool default's workers do not run report.unheard.of" in assigned.stderr
