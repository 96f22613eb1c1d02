"""Job history in SQL: a projection of the jobs stream, and queries over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts.jobs import (
    JobCancelled,
    JobFailed,
    JobRequested,
    JobStarted,
    JobSucceeded,
)
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.jobs.aggregate import (
    FINISHED,
    Job,
    JobStatus,
    changes,
    describe,
    evolve,
)
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.stores.sql import Bound, SqlOp

NAME = "jobs"
metadata = MetaData()
jobs = Table(
    "tp_jobs", metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("job_id", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("pool", String(64)),
    Column("priority", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("args", JSON),
    Column("progress", Float),
    Column("message", Text),
    Column("worker", String(200)),
    Column("result", JSON),
)  # fmt: skip
attempts = Table(
    "tp_job_attempts", metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("job_id", String(64), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("worker", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)  # fmt: skip
transitions = Table(
    "tp_job_transitions", metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("attempt", Integer),
    Column("detail", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("progress", Float),
    Column("actor", String(200)),
)  # fmt: skip

# The job's fields its row keeps, by column: the row is the job as `evolve` makes it.
COLUMNS = {
    "kind": "kind", "status": "status", "pool": "pool", "priority": "priority",
    "attempts": "attempt", "cancel_requested": "cancel_requested", "error": "error",
    "created_at": "requested_at", "args": "args", "progress": "progress",
    "message": "message", "worker": "worker", "result": "result",
}  # fmt: skip
_FIELDS = {field: column for column, field in COLUMNS.items()}
# Each statement built once; its rows' values are bound parameters.
_INSERT_JOB = insert(jobs)
_INSERT_ATTEMPT = insert(attempts)
_INSERT_TRANSITION = insert(transitions)
_UPDATE_JOB = update(jobs).where(
    jobs.c.tenant_id == bindparam("_tenant"), jobs.c.job_id == bindparam("_job")
)
_END_ATTEMPT = update(attempts).where(
    attempts.c.tenant_id == bindparam("_tenant"),
    attempts.c.job_id == bindparam("_job"),
    attempts.c.attempt == bindparam("_attempt"),
)


def row_of(job: Job) -> dict[str, Any]:
    """The history row's columns of `job` (what a fold of its events makes them)."""
    return {column: _value(getattr(job, field)) for column, field in COLUMNS.items()}


def _value(value: Any) -> Any:
    return value.value if isinstance(value, JobStatus) else value


@dataclass(frozen=True)
class JobHistoryProjection:
    """Projects every job event into the three history tables: each job's row holds
    the fields `changes` sets, so it is the job as the scheduler folds it. Each write
    names its row, so a batch writes a job's row once, however many of its events it
    holds (see `stores.sql`)."""

    subjects: Subjects
    name: str = NAME

    def filters(self) -> Sequence[str]:
        """Every job event."""
        return [self.subjects.all_jobs()]

    def apply(self, event: StoredEvent) -> Sequence[SqlOp]:
        """The SQL statements of one job event (each built once, see `Bound`)."""
        envelope, data = event.envelope, event.envelope.data
        tenant, job_id, at = envelope.tenant_id, getattr(data, "job_id", ""), envelope.occurred_at
        log = Bound(_INSERT_TRANSITION, {
            "seq": event.seq, "tenant_id": tenant, "job_id": job_id, "type": envelope.type,
            "attempt": getattr(data, "attempt", None), "detail": describe(data) or None,
            "at": at, "progress": getattr(data, "progress", None), "actor": envelope.actor,
        }, ("transition", event.seq))  # fmt: skip
        return [self._job(event), *self._attempt(tenant, job_id, at, data), log]

    def _job(self, event: StoredEvent) -> Bound:
        envelope = event.envelope
        job_id, at = getattr(envelope.data, "job_id", ""), envelope.occurred_at
        if isinstance(envelope.data, JobRequested):
            row = row_of(evolve(None, event))
            values = {**row, "tenant_id": envelope.tenant_id, "job_id": job_id,
                      "updated_at": at, "finished_at": None}  # fmt: skip
            return Bound(_INSERT_JOB, values, ("job", envelope.tenant_id, job_id))
        changed = changes(event)
        values = {column: _value(changed[f]) for f, column in _FIELDS.items() if f in changed}
        if "status" in changed:
            values["finished_at"] = at if changed["status"] in FINISHED else None
        where = {"_tenant": envelope.tenant_id, "_job": job_id}
        return Bound(_UPDATE_JOB, {**values, "updated_at": at, **where},
                     ("job", envelope.tenant_id, job_id))  # fmt: skip

    def _attempt(self, tenant: str, job_id: str, at: datetime, data: object) -> list[SqlOp]:
        """The attempts table: a row per attempt started, ended by its outcome."""

        def ended(number: int, **values: Any) -> list[SqlOp]:
            if not number:
                return []  # refused or cancelled before any attempt started
            where = {"_tenant": tenant, "_job": job_id, "_attempt": number}
            return [Bound(_END_ATTEMPT, {"outcome": "", "error": None, **values,
                                         "finished_at": at, **where},
                          ("attempt", tenant, job_id, number))]  # fmt: skip

        match data:
            case JobStarted(attempt=n, worker=worker):
                return [Bound(_INSERT_ATTEMPT, {
                    "tenant_id": tenant, "job_id": job_id, "attempt": n, "worker": worker,
                    "outcome": "running", "error": None, "started_at": at, "finished_at": None,
                }, ("attempt", tenant, job_id, n))]  # fmt: skip
            case JobSucceeded(attempt=n):
                return ended(n, outcome="succeeded")
            case JobFailed(attempt=n, error=error):
                return ended(n, outcome="failed", error=error)
            case JobCancelled(attempt=n):
                return ended(n, outcome="cancelled")
        return []


class JobHistory:
    """Queries over job history."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list(
        self,
        tenant_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Jobs, newest first, filtered by tenant, status and creation time."""
        query = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if tenant_id is not None:
            query = query.where(jobs.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(jobs.c.status == status)
        if since is not None:
            query = query.where(jobs.c.created_at >= since)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def show(self, tenant_id: str, job_id: str) -> dict[str, Any] | None:
        """One job with its attempts and transitions."""
        mine = (jobs.c.tenant_id == tenant_id, jobs.c.job_id == job_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(jobs).where(*mine))).first()
            if row is None:
                return None
            tries = await conn.execute(
                select(attempts)
                .where(attempts.c.tenant_id == tenant_id, attempts.c.job_id == job_id)
                .order_by(attempts.c.attempt)
            )
            steps = await conn.execute(
                select(transitions)
                .where(transitions.c.tenant_id == tenant_id, transitions.c.job_id == job_id)
                .order_by(transitions.c.seq)
            )
            return {
                **row._mapping,
                "attempt_rows": [dict(r._mapping) for r in tries],
                "transitions": [dict(r._mapping) for r in steps],
            }
