"""Job history in SQL: a projection of the jobs stream, and queries over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Executable,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts.jobs import (
    JobCancelled,
    JobCancelRequested,
    JobDeadLettered,
    JobFailed,
    JobProgressed,
    JobRequested,
    JobScheduled,
    JobStarted,
    JobSucceeded,
)
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.eventlog import StoredEvent

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
)  # fmt: skip


@dataclass(frozen=True)
class JobHistoryProjection:
    """Projects every job event into the three history tables."""

    subjects: Subjects
    name: str = NAME

    def filters(self) -> Sequence[str]:
        """Every job event."""
        return [self.subjects.all_jobs()]

    def apply(self, event: StoredEvent) -> Sequence[Executable]:
        """The SQL statements of one job event."""
        envelope, data = event.envelope, event.envelope.data
        tenant, job_id, at = envelope.tenant_id, getattr(data, "job_id", ""), envelope.occurred_at
        attempt = getattr(data, "attempt", None)
        detail = getattr(data, "error", None) or getattr(data, "pool", None)
        log = insert(transitions).values(
            seq=event.seq, tenant_id=tenant, job_id=job_id, type=envelope.type,
            attempt=attempt, detail=detail, at=at,
        )  # fmt: skip
        return [*self._changes(tenant, job_id, at, data), log]

    def _changes(self, tenant: str, job_id: str, at: datetime, data: object) -> list[Executable]:
        this_job = and_(jobs.c.tenant_id == tenant, jobs.c.job_id == job_id)

        def job(**values: Any) -> Executable:
            return update(jobs).where(this_job).values(updated_at=at, **values)

        def attempt_of(number: int, **values: Any) -> Executable:
            return (
                update(attempts)
                .where(attempts.c.tenant_id == tenant, attempts.c.job_id == job_id,
                       attempts.c.attempt == number)
                .values(finished_at=at, **values)
            )  # fmt: skip

        match data:
            case JobRequested(kind=kind, priority=priority):
                return [insert(jobs).values(
                    tenant_id=tenant, job_id=job_id, kind=kind, status="requested",
                    priority=priority, attempts=0, cancel_requested=False,
                    created_at=at, updated_at=at,
                )]  # fmt: skip
            case JobScheduled(pool=pool, attempt=n):
                return [job(status="scheduled", pool=pool, attempts=n)]
            case JobStarted(attempt=n, worker=worker):
                row = insert(attempts).values(
                    tenant_id=tenant, job_id=job_id, attempt=n, worker=worker,
                    outcome="running", started_at=at,
                )  # fmt: skip
                return [job(status="running"), row]
            case JobProgressed():
                return []
            case JobSucceeded(attempt=n):
                return [job(status="succeeded", finished_at=at), attempt_of(n, outcome="succeeded")]
            case JobFailed(attempt=n, error=error, retry_at=retry_at):
                status = "requested" if retry_at is not None else "failed"
                finished = None if retry_at is not None else at
                changes = [job(status=status, error=error, finished_at=finished)]
                return changes + ([attempt_of(n, outcome="failed", error=error)] if n else [])
            case JobDeadLettered(error=error):
                return [job(status="dead_lettered", error=error, finished_at=at)]
            case JobCancelRequested():
                return [job(cancel_requested=True)]
            case JobCancelled(attempt=n):
                changes = [job(status="cancelled", finished_at=at)]
                return changes + ([attempt_of(n, outcome="cancelled")] if n else [])
        raise ValueError(f"{NAME} does not project {type(data).__name__}")


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
