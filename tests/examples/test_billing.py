"""The billing example on real servers: publish through the aggregate helper, project into
Redis and SQL, and rebuild both to the same read models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import tenantplane as tp
from examples.billing.events import BILLING
from examples.billing.invoices import InvoiceRefused, invoices, issue, pay, void
from examples.billing.projections import BalanceProjection, balance_key, ledger_table
from examples.billing.service import balances_projector, ledger_projector

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(nc: NATS, settings: tp.Settings) -> AsyncIterator[tp.DomainStore]:
    store = tp.DomainStore(nc.jetstream(), settings.subjects, BILLING)
    await store.ensure_stream()
    yield store
    await nc.jetstream().delete_stream(store.stream)


async def _publish(store: tp.DomainStore) -> dict[str, dict[str, int]]:
    """Invoices of two tenants; what their balances must be."""
    accounts = invoices(store)
    expected = {}
    for tenant, count in (("acme", 6), ("beta", 3)):
        for i in range(count):
            await accounts.execute(tenant, f"inv-{i}", issue("c1", 1000 + i), actor="api")
        await accounts.execute(tenant, "inv-0", pay(400), actor="api")
        await accounts.execute(tenant, "inv-0", pay(600), actor="api")
        await accounts.execute(tenant, "inv-1", void(), actor="api")
        issued = sum(1000 + i for i in range(count))
        expected[tenant] = {
            "issued_cents": issued, "paid_cents": 1000, "invoices": count, "voided": 1,
        }  # fmt: skip
    with pytest.raises(InvoiceRefused, match="more than"):
        await accounts.execute("acme", "inv-2", pay(999_999), actor="api")
    return expected


async def _balances(redis: aioredis.Redis, keys: tp.Keys) -> dict[str, dict[str, int]]:
    found = {}
    for tenant in ("acme", "beta"):
        raw = await redis.hgetall(balance_key(keys, tenant))
        found[tenant] = {tp.as_text(k): int(v) for k, v in raw.items()}
    return found


async def _ledger(engine: AsyncEngine, table: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(ledger_table(table)).order_by("seq"))
        return [tuple(r) for r in rows]


async def test_billing_projects_balances_and_a_ledger_and_rebuilds_both(
    store: tp.DomainStore,
    nc: NATS,
    redis: aioredis.Redis,
    sql_engine: AsyncEngine,
    settings: tp.Settings,
) -> None:
    # Given billing's tables, its two projectors running, and invoices published
    async with sql_engine.begin() as conn:
        for name in ("billing_ledger", "billing_ledger_rebuild"):
            await conn.run_sync(ledger_table(name).create, checkfirst=True)
    balances = balances_projector(nc, redis, settings)
    ledger = ledger_projector(nc, sql_engine, settings)
    stop = asyncio.Event()
    supervisor = tp.Supervisor(stop)
    supervisor.start("balances", balances.run)
    supervisor.start("ledger", ledger.run)
    try:
        expected = await _publish(store)
        head = await store.log.head(store.stream)
        await balances.wait_for(head)
        await ledger.wait_for(head)

        # Then the balances are what the invoices say, and the ledger has every movement
        assert await _balances(redis, settings.keys) == expected
        live_ledger = await _ledger(sql_engine, "billing_ledger")
        assert len(live_ledger) == 6 + 3 + 2 * 2

        # When the balances are rebuilt beside the live keys and swapped in
        def make(keys: tp.Keys) -> tuple[BalanceProjection, list[str]]:
            projection = BalanceProjection(settings.subjects, keys)
            return projection, projection.owned_patterns()

        rebuild = tp.RedisRebuild(make, nc, redis, store.log, settings.keys, BILLING.registry)
        result = await rebuild.run()

        # Then they equal the live ones, and so does a ledger rebuilt into a new table
        assert result.events == head
        assert await _balances(redis, settings.keys) == expected
        rebuilt = ledger_projector(nc, sql_engine, settings, table="billing_ledger_rebuild")
        supervisor.start("ledger-rebuild", rebuilt.run)
        await rebuilt.wait_for(head)
        assert await _ledger(sql_engine, "billing_ledger_rebuild") == live_ledger
    finally:
        stop.set()
        await supervisor.wait()
