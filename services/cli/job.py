"""`tenantctl job`: submit, watch, inspect, cancel and retry tenant jobs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from sqlalchemy import inspect

from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.services.cli.context import Session, default_actor, run, session, settings_from
from tenantplane.services.cli.options import Output, Reason, assignments
from tenantplane.services.cli.output import Format, emit, emit_record, out, print_error
from tenantplane.services.jobs.aggregate import Job, JobStatus, describe, evolve, job_id_for
from tenantplane.services.jobs.client import JobClient
from tenantplane.services.jobs.history import JobHistory
from tenantplane.services.jobs.history import jobs as history_table
from tenantplane.services.jobs.log import Submitted
from tenantplane.services.runtime.database import database
from tenantplane.services.runtime.errors import JobNotFound, StoreUnavailable
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.timetravel import parse_point

app = typer.Typer(help="Tenant jobs: submit, watch, show, list, cancel, retry.")
T = TypeVar("T")
Wait = typer.Option(
    False, "--wait", "-w", help="Follow the job until it ends; exit 0 only if it succeeded"
)


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "tenant": job.tenant_id, "job_id": job.job_id, "kind": job.kind,
        "status": job.status.value, "pool": job.pool, "attempt": job.attempt,
        "max_attempts": job.max_attempts, "priority": job.priority, "progress": job.progress,
        "message": job.message, "worker": job.worker, "error": job.error,
        "result": job.result, "args": job.args, "cancel_requested": job.cancel_requested,
        "seq": job.version,
    }  # fmt: skip


def _submitted(done: Submitted) -> dict[str, Any]:
    return {"tenant": done.tenant_id, "job_id": done.job_id, "seq": done.seq,
            "duplicate": done.duplicate}  # fmt: skip


@app.command()
def submit(
    ctx: typer.Context,
    tenant: str,
    kind: str,
    arg: list[str] = typer.Option([], "--arg", "-a", help="key=value (JSON values), repeatable"),
    priority: int = typer.Option(5, "--priority", "-p", min=0, max=9, help="higher first"),
    key: str = typer.Option(None, "--key", "-k", help="Idempotency key: one job per key"),
    attempts: int = typer.Option(3, "--max-attempts", min=1, max=50),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds an attempt may run"),
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Ask for a job; the scheduler admits it and a worker of the tenant's pool runs it.

    A kind that no worker of the tenant's pool runs is refused (unknown_job_kind).
    With --wait, follows the job like `job watch` and prints its result.

    Example:  tenantctl job submit acme report.write -a directory=/tmp/reports -k nightly-42
    Example:  tenantctl job submit acme report.write -a directory=/tmp/reports --wait
    """
    args = assignments(arg)

    async def go() -> Submitted | Job:
        async with session(settings_from(ctx)) as s:
            jobs = _jobs(s)
            done = await jobs.submit(
                tenant, kind, args, priority=priority, idempotency_key=key,
                max_attempts=attempts, timeout_s=timeout,
            )  # fmt: skip
            if not wait:
                return done
            if output is not Format.JSON:
                out.print(f"submitted job {done.job_id}")
            return await _follow(jobs, tenant, done.job_id, output)

    result = run(go())
    if isinstance(result, Job):
        _outcome(result, output)
    else:
        emit(_submitted(result), output, "submitted")


@app.command()
def watch(ctx: typer.Context, tenant: str, job_id: str, output: Format = Output) -> None:
    """Follow a job live, with its progress, until it ends; then print its result.

    Exits 0 when the job succeeded, 1 when it failed, was dead-lettered or was cancelled.

    Example:  tenantctl job watch acme 3f1c2a9e-...
    """

    async def go() -> Job:
        async with session(settings_from(ctx)) as s:
            return await _follow(_jobs(s), validate_tenant_id(tenant), job_id, output)

    _outcome(run(go()), output)


async def _follow(jobs: JobClient, tenant: str, job_id: str, output: Format) -> Job:
    """Follow a job to its end, drawing its progress unless printing JSON."""
    followed = jobs.follow(tenant, job_id)
    if output is Format.JSON:
        async for job in followed:
            if job.finished:
                return job
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("", total=1.0)
        async for job in followed:
            bar.update(task, completed=job.progress, description=_state(job))
            if job.finished:
                return job
    raise AssertionError("a followed job ends finished")  # pragma: no cover


def _state(job: Job) -> str:
    attempt = f" (attempt {job.attempt}/{job.max_attempts})" if job.attempt else ""
    message = f": {job.message}" if job.message and not job.finished else ""
    return f"{job.status.value}{attempt}{message}"


def _outcome(job: Job, output: Format) -> None:
    """Print how a job ended; exit 1 unless it succeeded."""
    if output is Format.JSON:
        emit(_job_row(job), output)
    elif job.status is JobStatus.SUCCEEDED:
        result = f": {json.dumps(job.result, default=str)}" if job.result else ""
        out.print(f"job {job.job_id} succeeded{result}")
    else:
        error = f": {job.error}" if job.error else ""
        print_error(f"job {job.job_id} {job.status.value}{error}")
    if job.status is not JobStatus.SUCCEEDED:
        raise typer.Exit(1)


@app.command()
def show(
    ctx: typer.Context,
    tenant: str,
    job_id: str = typer.Argument(None, help="The job's id [or give --key]"),
    key: str = typer.Option(None, "--key", "-k", help="The idempotency key it was submitted with"),
    output: Format = Output,
) -> None:
    """Show a job (its state, result and error) and each of its transitions, from the log.

    Example:  tenantctl job show acme 3f1c2a9e-...
    Example:  tenantctl job show acme --key nightly-1 -o wide
    """
    if (job_id is None) == (key is None):
        raise typer.BadParameter("give the job's id or its --key, one of them")
    tenant = validate_tenant_id(tenant)
    job_id = job_id or job_id_for(tenant, key)

    async def go() -> list[StoredEvent]:
        async with session(settings_from(ctx)) as s:
            return [stored async for stored in _jobs(s).log.events(tenant, job_id)]

    events = run(go())
    if not events:
        raise JobNotFound(f"no job {job_id} for tenant {tenant}", tenant_id=tenant, job_id=job_id)
    job: Job | None = None
    for stored in events:
        job = evolve(job, stored)
    assert job is not None
    steps = [_transition(stored, output) for stored in events]
    if output is Format.JSON:
        emit({**_job_row(job), "transitions": steps}, output)
        return
    shown = {k: v for k, v in _job_row(job).items() if v not in ("", {}, None)}
    emit_record(shown, output, "job")
    emit(steps, output, "transitions")


def _transition(stored: StoredEvent, output: Format) -> dict[str, Any]:
    envelope, data = stored.envelope, stored.envelope.data
    at = envelope.occurred_at
    row = {
        "seq": stored.seq,
        "at": at.isoformat() if output is not Format.TABLE else f"{at:%H:%M:%S}",
        "event": envelope.type.removeprefix("job."),
        "attempt": getattr(data, "attempt", None),
        "detail": describe(data),
    }
    if output is not Format.TABLE:
        row |= {"progress": getattr(data, "progress", None), "actor": envelope.actor,
                "reason": envelope.reason}  # fmt: skip
    return row


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    tenant: str = typer.Option(None, "--tenant", "-t"),
    status: str = typer.Option(None, "--status", "-s", help="requested, scheduled, running, "
                               "succeeded, failed, dead_lettered or cancelled"),
    since: str = typer.Option(None, "--since", help="A time (2026-11-23T08:00Z) or an age (2h)"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000),
    output: Format = Output,
) -> None:  # fmt: skip
    """List jobs from the history, newest first (`-o wide` for every column).

    Example:  tenantctl job list --tenant acme --status failed --since 1d
    """
    moment = parse_point(since)[1] if since else None

    async def go() -> list[dict[str, Any]]:
        return await _history(settings_from(ctx), lambda h: h.list(tenant, status, moment, limit))

    rows = run(go())
    if output is Format.TABLE:
        rows = [_narrow(row) for row in rows]
    emit(rows, output, "jobs")


def _narrow(row: dict[str, Any]) -> dict[str, Any]:
    """What fits 80 columns: whose, which job, what, where it is, when (time of day;
    `-o wide` has the dates)."""
    created = row["created_at"]
    return {
        "tenant": row["tenant_id"], "job_id": row["job_id"], "kind": row["kind"],
        "status": row["status"],
        "created": f"{created:%H:%M:%S}" if created is not None else "",
    }  # fmt: skip


def _jobs(s: Session) -> JobClient:
    """Jobs by command, as the acting operator."""
    settings = s.settings
    return JobClient(
        s.nc, settings.subjects, actor=default_actor(), timeout=settings.request_timeout_s
    )


async def _history(settings: Settings, query: Callable[[JobHistory], Awaitable[T]]) -> T:
    """A query of the jobs' history, as it is: the scheduler owns (and migrates) it."""
    async with database(settings) as engine:
        async with engine.connect() as conn:
            made = await conn.run_sync(lambda c: inspect(c).has_table(history_table.name))
        if not made:
            raise StoreUnavailable(
                "no job history in this database yet: the scheduler makes it when it first "
                "starts (or TENANTPLANE_DATABASE_URL is not the scheduler's database)",
                server="database",
            )
        return await query(JobHistory(engine))


@app.command()
def cancel(ctx: typer.Context, tenant: str, job_id: str, output: Format = Output) -> None:
    """Cancel a job: a queued one never starts; a running one stops at its next check.

    Example:  tenantctl job cancel acme 3f1c2a9e-...
    """

    async def go() -> dict[str, Any]:
        async with session(settings_from(ctx)) as s:
            return _job_row(await _jobs(s).cancel(tenant, job_id))

    emit_record(run(go()), output, "cancel requested")


@app.command()
def retry(
    ctx: typer.Context, tenant: str, job_id: str, reason: str = Reason, output: Format = Output
) -> None:
    """Submit a finished (failed, dead-lettered, cancelled) job again, as a new job.

    Example:  tenantctl job retry acme 3f1c2a9e-...
    """

    async def go() -> dict[str, Any]:
        async with session(settings_from(ctx)) as s:
            return _submitted(await _jobs(s).retry(tenant, job_id, reason))

    emit(run(go()), output, "resubmitted")
