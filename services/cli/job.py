"""`tenantctl job`: submit, inspect, cancel and retry tenant jobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from sqlalchemy import inspect

from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.services.cli.config_cmd import parse_value
from tenantplane.services.cli.context import Session, default_actor, run, session, settings_from
from tenantplane.services.cli.options import Output
from tenantplane.services.cli.output import Format, emit
from tenantplane.services.jobs.aggregate import Job, job_id_for
from tenantplane.services.jobs.client import JobClient
from tenantplane.services.jobs.history import JobHistory
from tenantplane.services.jobs.history import jobs as history_table
from tenantplane.services.jobs.log import Submitted
from tenantplane.services.runtime.database import database
from tenantplane.services.runtime.errors import InvalidTransition, StoreUnavailable
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.timetravel import parse_point

app = typer.Typer(help="Tenant jobs: submit, show, list, cancel, retry.")
T = TypeVar("T")


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "tenant": job.tenant_id, "job_id": job.job_id, "kind": job.kind,
        "status": job.status.value, "pool": job.pool, "attempt": job.attempt,
        "priority": job.priority, "error": job.error,
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
    output: Format = Output,
) -> None:
    """Ask for a job; the scheduler admits it and a worker of the tenant's pool runs it.

    Example:  tenantctl job submit acme report.write -a directory=/tmp/reports -k nightly-42
    """
    args = {}
    for item in arg:
        name, sep, text = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not key=value")
        args[name] = parse_value(text)

    async def go() -> Submitted:
        async with session(settings_from(ctx)) as s:
            return await _jobs(s).submit(
                tenant, kind, args, priority=priority, idempotency_key=key,
                max_attempts=attempts, timeout_s=timeout,
            )  # fmt: skip

    emit(_submitted(run(go())), output, "submitted")


@app.command()
def show(
    ctx: typer.Context,
    tenant: str,
    job_id: str = typer.Argument(None, help="The job's id [or give --key]"),
    key: str = typer.Option(None, "--key", "-k", help="The idempotency key it was submitted with"),
    output: Format = Output,
) -> None:
    """Show a job's state (from the log) and its attempts and transitions (from history).

    Example:  tenantctl job show acme 3f1c2a9e-...
    Example:  tenantctl job show acme --key nightly-1
    """
    if (job_id is None) == (key is None):
        raise typer.BadParameter("give the job's id or its --key, one of them")
    job_id = job_id or job_id_for(validate_tenant_id(tenant), key)

    async def go() -> dict[str, Any]:
        settings = settings_from(ctx)
        async with session(settings) as s:
            job = await _jobs(s).get(validate_tenant_id(tenant), job_id)
        found = await _history(settings, lambda h: h.show(tenant, job_id))
        return {**_job_row(job), "transitions": (found or {}).get("transitions", [])}

    emit(run(go()), output, f"job {job_id}")


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
    """List jobs from the history, newest first.

    Example:  tenantctl job list --tenant acme --status failed --since 1d
    """
    moment = parse_point(since)[1] if since else None

    async def go() -> list[dict[str, Any]]:
        return await _history(settings_from(ctx), lambda h: h.list(tenant, status, moment, limit))

    rows = run(go())
    shown = ("tenant_id", "job_id", "kind", "status", "pool", "attempts", "created_at", "error")
    emit([{k: row[k] for k in shown} for row in rows], output, "jobs")


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

    emit(run(go()), output, "cancel requested")


@app.command()
def retry(ctx: typer.Context, tenant: str, job_id: str, output: Format = Output) -> None:
    """Submit a finished (failed, dead-lettered, cancelled) job again, as a new job.

    Example:  tenantctl job retry acme 3f1c2a9e-...
    """

    async def go() -> dict[str, Any]:
        async with session(settings_from(ctx)) as s:
            jobs = _jobs(s)
            job = await jobs.get(tenant, job_id)
            if not job.finished:
                raise InvalidTransition(f"job {job_id} is {job.status}; only finished jobs retry")
            again = await jobs.submit(
                tenant, job.kind, job.args, priority=job.priority,
                max_attempts=job.max_attempts, timeout_s=job.timeout_s, reason=f"retry of {job_id}",
            )  # fmt: skip
            return _submitted(again)

    emit(run(go()), output, "resubmitted")
