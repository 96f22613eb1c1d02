"""A projection whose read model shows any lost or doubled event.

Per tenant it counts events (HINCRBY, so a doubled apply is visible) and keeps
the sum of their sequences and the last one. Used by the kernel's contract
tests and the kill -9 test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from sqlalchemy import (
    BigInteger,
    Column,
    Executable,
    MetaData,
    String,
    Table,
    exists,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.runtime.stores.memory import MemoryOp, MemoryStore, State
from tenantplane.services.runtime.stores.redis_ops import RedisOp, as_text


@dataclass(frozen=True)
class CountingProjection:
    """Counts each tenant's events into `<root>:count:{<tenant>}` (tagged by tenant)."""

    subjects: Subjects
    root: str
    name: str = "counting"
    poison_marker: str | None = None

    def filters(self) -> Sequence[str]:
        return [self.subjects.all_events()]

    def apply(self, event: StoredEvent) -> Sequence[RedisOp]:
        if self.poison_marker is not None and self.poison_marker in event.envelope.reason:
            raise ValueError("this event's reason asks for it to fail")
        key = f"{self.root}:count:{{{event.envelope.tenant_id}}}"
        return [
            RedisOp("HINCRBY", (key, "events", 1)),
            RedisOp("HINCRBY", (key, "seq_sum", event.seq)),
            RedisOp("HSET", (key, "last_seq", event.seq)),
        ]


async def digest(redis: aioredis.Redis, root: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A digest of every counter under `root`, and the counters themselves."""
    state: dict[str, dict[str, str]] = {}
    async for key in redis.scan_iter(match=f"{root}:count:*"):
        fields = await redis.hgetall(key)
        tenant = as_text(key).rsplit(":", 1)[1].strip("{}")
        state[tenant] = {as_text(k): as_text(v) for k, v in sorted(fields.items())}
    text = repr(sorted(state.items())).encode()
    return hashlib.sha256(text).hexdigest(), state


def counts_table(name: str) -> Table:
    """The SQL table of the counting projection."""
    return Table(
        name,
        MetaData(),
        Column("tenant", String(64), primary_key=True),
        Column("events", BigInteger, nullable=False),
        Column("seq_sum", BigInteger, nullable=False),
        Column("last_seq", BigInteger, nullable=False),
    )


@dataclass(frozen=True)
class SqlCountingProjection:
    """The counting projection over SQL: an upsert then an increment per event."""

    subjects: Subjects
    table: Table
    name: str = "counting"
    poison_marker: str | None = None

    def filters(self) -> Sequence[str]:
        return [self.subjects.all_events()]

    def apply(self, event: StoredEvent) -> Sequence[Executable]:
        if self.poison_marker is not None and self.poison_marker in event.envelope.reason:
            raise ValueError("this event's reason asks for it to fail")
        tenant, c = event.envelope.tenant_id, self.table.c
        missing = ~exists().where(c.tenant == tenant)
        seed = select(literal(tenant), literal(0), literal(0), literal(0)).where(missing)
        return [
            insert(self.table).from_select(["tenant", "events", "seq_sum", "last_seq"], seed),
            update(self.table)
            .where(c.tenant == tenant)
            .values(events=c.events + 1, seq_sum=c.seq_sum + event.seq, last_seq=event.seq),
        ]


async def sql_digest(engine: AsyncEngine, table: Table) -> tuple[str, dict[str, dict[str, str]]]:
    """The same digest as `digest`, over the SQL table."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(table))).all()
    state = {
        r.tenant: {"events": str(r.events), "last_seq": str(r.last_seq), "seq_sum": str(r.seq_sum)}
        for r in rows
    }
    text = repr(sorted(state.items())).encode()
    return hashlib.sha256(text).hexdigest(), state


@dataclass(frozen=True)
class MemoryCountingProjection:
    """The counting projection in memory: one state dict per tenant."""

    subjects: Subjects
    name: str = "counting"
    poison_marker: str | None = None

    def filters(self) -> Sequence[str]:
        return [self.subjects.all_events()]

    def apply(self, event: StoredEvent) -> Sequence[MemoryOp]:
        if self.poison_marker is not None and self.poison_marker in event.envelope.reason:
            raise ValueError("this event's reason asks for it to fail")

        def count(state: State) -> None:
            state["events"] = state.get("events", 0) + 1
            state["seq_sum"] = state.get("seq_sum", 0) + event.seq
            state["last_seq"] = event.seq

        return [MemoryOp(event.envelope.tenant_id, count)]


async def memory_digest(store: MemoryStore) -> tuple[str, dict[str, dict[str, str]]]:
    """The same digest as `digest`, over a memory store."""
    state = {
        tenant: {k: str(v) for k, v in sorted(fields.items())}
        for tenant, fields in store.tenants.items()
    }
    text = repr(sorted(state.items())).encode()
    return hashlib.sha256(text).hexdigest(), state
