"""One harness per read-model store, so the projector's contract tests run on each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts import EVENTS, Keys
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.leadership import Lease
from tenantplane.services.runtime.projector import Projector
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.memory import MemoryStore
from tenantplane.services.runtime.stores.redis import RedisStore
from tenantplane.services.runtime.stores.redis_ops import RedisOp, as_text
from tenantplane.services.runtime.stores.sql import SqlStore
from tests.support.counting import (
    CountingProjection,
    MemoryCountingProjection,
    SqlCountingProjection,
    counts_table,
    digest,
    memory_digest,
    sql_digest,
)
from tests.support.events import config_set
from tests.support.running import running

Digest = tuple[str, dict[str, dict[str, str]]]


@dataclass
class Harness:
    """Builds counting projectors on one store; `variant` keeps read models apart."""

    name: str
    build: Callable[[str, str | None], tuple[Any, Any]]
    read: Callable[[str], Awaitable[Digest]]
    nc: NATS
    settings: Settings
    setup: Callable[[], Awaitable[None]] | None = None

    def projector(
        self,
        variant: str = "live",
        *,
        poison: str | None = None,
        max_batch: int = 1000,
        idle_check_s: float = 1.0,
        lease: bool = False,
    ) -> Projector[Any]:
        """A counting projector; with `lease`, one of a projection's replicas (only the
        holder of its lease projects)."""
        projection, store = self.build(variant, poison)
        js, subjects = self.nc.jetstream(), self.settings.subjects
        return Projector(
            projection,
            store,
            self.nc,
            subjects=subjects,
            registry=EVENTS,
            max_batch=max_batch,
            idle_check_s=idle_check_s,
            lease=Lease(js, subjects, projection.name) if lease else None,
        )

    async def digest(self, variant: str = "live") -> Digest:
        return await self.read(variant)

    async def parked(self, event_log: EventLog, tenant: str = "acme") -> int:
        """`tenant`'s events parked: its first one fails (the handler asks it to), the
        second waits behind it; projected until both are in. The second's sequence."""
        await event_log.append(config_set(tenant, reason="fail me", n=1))
        last = await event_log.append(config_set(tenant, n=2))
        async with running(self.projector(poison="fail me")) as failing:
            await failing.wait_for(last.seq)
        return last.seq


def _name(variant: str) -> str:
    return "counting" if variant == "live" else f"counting-{variant}"


def redis_harness(nc: NATS, redis: aioredis.Redis, settings: Settings) -> Harness:
    def root(variant: str) -> str:
        return settings.namespace if variant == "live" else f"{settings.namespace}-{variant}"

    def build(variant: str, poison: str | None) -> tuple[Any, Any]:
        r = root(variant)
        projection = CountingProjection(settings.subjects, r, _name(variant), poison)
        store = RedisStore(redis, Keys(r), projection.name, [f"{r}:count:*"],
                           lambda tenant: [f"{r}:count:{{{tenant}}}"])  # fmt: skip
        return projection, store

    return Harness("redis", build, lambda v: digest(redis, root(v)), nc, settings)


def sql_harness(nc: NATS, engine: AsyncEngine, settings: Settings, dialect: str) -> Harness:
    tables = {v: counts_table(f"counts_{v}") for v in ("live", "replay")}

    def build(variant: str, poison: str | None) -> tuple[Any, Any]:
        table = tables[variant]
        projection = SqlCountingProjection(settings.subjects, table, _name(variant), poison)
        return projection, SqlStore(engine, projection.name, [table], tenant_column="tenant")

    async def create_tables() -> None:
        async with engine.begin() as conn:
            for table in tables.values():
                await conn.run_sync(table.metadata.create_all)

    def read(variant: str) -> Awaitable[Digest]:
        return sql_digest(engine, tables[variant])

    return Harness(dialect, build, read, nc, settings, create_tables)


def memory_harness(nc: NATS, settings: Settings) -> Harness:
    stores: dict[str, MemoryStore] = {}  # one per variant, kept like a database would

    def build(variant: str, poison: str | None) -> tuple[Any, Any]:
        projection = MemoryCountingProjection(settings.subjects, _name(variant), poison)
        return projection, stores.setdefault(variant, MemoryStore(projection.name))

    def read(variant: str) -> Awaitable[Digest]:
        return memory_digest(stores.setdefault(variant, MemoryStore(_name(variant))))

    return Harness("memory", build, read, nc, settings)


def redis_projector(
    nc: NATS, redis: aioredis.Redis, settings: Settings, **options: Any
) -> Projector[RedisOp]:
    """A counting projector on Redis (for tests that are about Redis itself)."""
    projector: Projector[RedisOp] = redis_harness(nc, redis, settings).projector(**options)
    return projector


async def read_models(redis: aioredis.Redis, settings: Settings) -> dict[str, object]:
    """Every read-model key of the installation with its value (positions left out)."""
    found: dict[str, object] = {}
    async for raw in redis.scan_iter(match=f"{settings.namespace}:*"):
        key = raw.decode()
        kind = as_text(await redis.type(key))
        if ":proj:" in key:
            continue
        if kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "set":
            found[key] = await redis.smembers(key)
        else:
            found[key] = await redis.get(key)
    return found
