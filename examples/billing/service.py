"""The billing service: projects balances (Redis) and the ledger (SQL) until stopped.

    python -m examples.billing.service      # against `tenantctl dev up`'s system

It publishes nothing by itself: the API in front of it (not part of this
example) would call `invoices(store).execute(...)`, as the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import tenantplane as tp
from examples.billing.events import BILLING
from examples.billing.projections import BalanceProjection, LedgerProjection, ledger_table


@dataclass
class Billing:
    """The billing service's connections and its two projectors."""

    store: tp.DomainStore
    balances: tp.Projector[tp.RedisOp]
    ledger: tp.Projector[Executable]

    def start(self, supervisor: tp.Supervisor) -> None:
        """Run both projectors under `supervisor` (restarted if they fail)."""
        supervisor.start("billing.balances", self.balances.run)
        supervisor.start("billing.ledger", self.ledger.run)


def balances_projector(
    nc: NATS, redis: aioredis.Redis, settings: tp.Settings, keys: tp.Keys | None = None
) -> tp.Projector[tp.RedisOp]:
    """The balance projection into Redis under `keys` (the installation's by default).

    Rebuilt whole beside the live keys and swapped in (on `tenantctl projection
    rebuild billing-balance`, or when Redis lost it); one tenant is replayed in place.
    """
    keys = keys or settings.keys
    projection = BalanceProjection(settings.subjects, keys)
    store = tp.RedisStore(redis, keys, projection.name, projection.owned_patterns(),
                          projection.tenant_patterns)  # fmt: skip
    log = tp.DomainStore(nc.jetstream(), settings.subjects, BILLING).log
    rebuild = tp.RedisRebuild(_balances(settings), nc, redis, log, keys, BILLING.registry)
    return tp.Projector(
        projection, store, nc, subjects=settings.subjects, registry=BILLING.registry,
        heal=rebuild.run,
    )  # fmt: skip


def _balances(settings: tp.Settings) -> Callable[[tp.Keys], tuple[BalanceProjection, list[str]]]:
    def make(keys: tp.Keys) -> tuple[BalanceProjection, list[str]]:
        projection = BalanceProjection(settings.subjects, keys)
        return projection, projection.owned_patterns()

    return make


def ledger_projector(
    nc: NATS, engine: AsyncEngine, settings: tp.Settings, table: str = "billing_ledger"
) -> tp.Projector[Executable]:
    """The ledger projection into a SQL table (a rebuild names another one)."""
    projection = LedgerProjection(settings.subjects, ledger_table(table), f"billing-{table}")
    store = tp.SqlStore(engine, projection.name, [projection.table], tenant_column="tenant_id")
    return tp.Projector(
        projection, store, nc, subjects=settings.subjects, registry=BILLING.registry
    )


@contextlib.asynccontextmanager
async def billing(settings: tp.Settings) -> AsyncIterator[Billing]:
    """Connect, make sure billing's stream and tables exist; close at exit."""
    nc = await tp.connect_nats(settings, "billing")
    redis = tp.connect_redis(settings)
    engine = create_async_engine(settings.database_url or "sqlite+aiosqlite:///billing.db")
    try:
        store = tp.DomainStore(nc.jetstream(), settings.subjects, BILLING)
        await store.ensure_stream()
        await tp.SqlStore.create_tables(engine, [ledger_table()])
        yield Billing(
            store, balances_projector(nc, redis, settings), ledger_projector(nc, engine, settings)
        )
    finally:
        await engine.dispose()
        await redis.aclose()
        await nc.close()


async def run(settings: tp.Settings, stop: asyncio.Event) -> None:
    """Project until `stop` is set."""
    async with billing(settings) as service:
        supervisor = tp.Supervisor(stop)
        service.start(supervisor)
        await stop.wait()
        await supervisor.wait()


def main() -> None:
    """Run with the settings of the environment (TENANTPLANE_*) until interrupted."""
    stop = asyncio.Event()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(tp.Settings(), stop))


if __name__ == "__main__":
    main()
