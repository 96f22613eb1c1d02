"""The billing example on real servers: publish through the aggregate helper, project into
Redis and SQL, and rebuild both to the same read models."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from sqlalchemy import Executable, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

import tenantplane as tp
from examples.billing.events import BILLING
from examples.billing.invoices import InvoiceRefused, invoices, issue, pay, void
from examples.billing.projections import BalanceProjection, balance_key, ledger_table
from examples.billing.service import balances_projector, ledger_projector
from tests.support.cli import tenantctl

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


@contextlib.asynccontextmanager
async def _running(
    nc: NATS, redis: aioredis.Redis, engine: AsyncEngine, settings: tp.Settings
) -> AsyncIterator[tuple[tp.Projector[tp.RedisOp], tp.Projector[Executable]]]:
    """Billing's two projectors, as its service runs them."""
    async with engine.begin() as conn:
        await conn.run_sync(ledger_table().create, checkfirst=True)
    balances = balances_projector(nc, redis, settings)
    ledger = ledger_projector(nc, engine, settings)
    stop = asyncio.Event()
    supervisor = tp.Supervisor(stop)
    supervisor.start("balances", balances.run)
    supervisor.start("ledger", ledger.run)
    try:
        yield balances, ledger
    finally:
        stop.set()
        await supervisor.wait()


async def _keys(redis: aioredis.Redis, keys: tp.Keys) -> dict[str, dict[str, str]]:
    """Every key of the balance projection with its fields."""
    found = {}
    async for key in redis.scan_iter(match=f"{keys.root}:billing:*"):
        fields = await redis.hgetall(key)
        found[tp.as_text(key)] = {tp.as_text(k): tp.as_text(v) for k, v in fields.items()}
    return found


async def _rebuild(
    nc: NATS, settings: tp.Settings, name: str, tenant: str | None = None
) -> dict[str, Any]:
    subject = settings.subjects.control(name, "rebuild")
    reply: dict[str, Any] = orjson.loads(
        (await nc.request(subject, orjson.dumps({"tenant": tenant}), timeout=10)).data
    )
    assert reply["ok"], reply
    return reply


async def test_billing_read_models_rebuilt_whole_or_for_one_tenant_equal_the_live_ones(
    store: tp.DomainStore,
    nc: NATS,
    redis: aioredis.Redis,
    sql_engine: AsyncEngine,
    settings: tp.Settings,
) -> None:
    async with _running(nc, redis, sql_engine, settings) as (balances, ledger):
        # Given billing's projections caught up with invoices of two tenants
        await _publish(store)
        head = await store.log.head(store.stream)
        await balances.wait_for(head)
        await ledger.wait_for(head)
        live_keys = await _keys(redis, settings.keys)
        live_rows = await _ledger(sql_engine, "billing_ledger")

        # When each is rebuilt whole by its running projector
        swapped = await _rebuild(nc, settings, balances.name)
        replayed = await _rebuild(nc, settings, ledger.name)

        # Then both equal what they were
        assert swapped["how"].startswith("built beside, swapped in")
        assert swapped["events"] == replayed["events"] == 9 + 6
        assert await _keys(redis, settings.keys) == live_keys
        assert await _ledger(sql_engine, "billing_ledger") == live_rows

        # Given acme's part damaged in both, and beta's marked
        acme, beta = balance_key(settings.keys, "acme"), balance_key(settings.keys, "beta")
        await redis.hset(acme, mapping={"issued_cents": 1, "stray": 1})
        await redis.hset(f"{settings.keys.root}:billing:{{acme}}:stray", "x", 1)
        await redis.hset(beta, "marker", 1)
        table = ledger_table()
        stray = (10**9, "beta", "inv-x", "paid", 1)
        async with sql_engine.begin() as conn:
            await conn.execute(table.delete().where(table.c.tenant_id == "acme"))
            await conn.execute(insert(table).values(stray))

        # When acme alone is rebuilt in each
        done = [await _rebuild(nc, settings, p.name, "acme") for p in (balances, ledger)]

        # Then acme's part is what the log says again, and beta's kept its marks
        assert [d["events"] for d in done] == [6 + 2 + 1, 6 + 2 + 1]
        assert await _keys(redis, settings.keys) == {
            **live_keys,
            beta: {**live_keys[beta], "marker": "1"},
        }
        assert await _ledger(sql_engine, "billing_ledger") == [*live_rows, stray]


async def test_tenantctl_lists_and_rebuilds_running_domain_projections(
    store: tp.DomainStore,
    nc: NATS,
    redis: aioredis.Redis,
    sql_engine: AsyncEngine,
    settings: tp.Settings,
) -> None:
    async with _running(nc, redis, sql_engine, settings) as (balances, ledger):
        # Given billing's projectors running, with one invoice applied
        await invoices(store).execute("acme", "inv-1", issue("c1", 500), actor="api")
        head = await store.log.head(store.stream)
        await balances.wait_for(head)

        # When an operator asks for the status of every projection
        listed = await asyncio.to_thread(tenantctl, settings, "projection", "status", "-o", "json")

        # Then billing's are listed from their running projectors, beside the built-in ones
        assert listed.returncode == 0, listed.stderr
        rows = {r["projection"]: r for r in json.loads(listed.stdout)}
        assert rows[balances.name] == {
            "projection": balances.name, "store": "redis", "checkpoint": head, "lag": 0,
            "parked": 0, "blocked_subjects": 0, "running": True,
        }  # fmt: skip
        assert (rows[ledger.name]["store"], rows[ledger.name]["running"]) == ("sql", True)
        assert rows["config"]["running"] is False

        # When one tenant of a domain projection is rebuilt, and an unknown projection
        rebuilt = await asyncio.to_thread(
            tenantctl, settings, "projection", "rebuild", balances.name, "-t", "acme", "-o", "json"
        )
        unknown = await asyncio.to_thread(tenantctl, settings, "projection", "rebuild", "nope")

        # Then the first reports what it replayed; the second is a clear error
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert json.loads(rebuilt.stdout)["events"] == 1
        assert unknown.returncode != 0
        assert "no running projector answers for 'nope'" in unknown.stderr
        assert balances.name in unknown.stderr


async def test_billing_projections_before_billings_stream_exists_are_empty_not_errors(
    nc: NATS, redis: aioredis.Redis, sql_engine: AsyncEngine, settings: tp.Settings
) -> None:
    # Given billing's projectors, and no billing stream yet
    balances = balances_projector(nc, redis, settings)
    async with sql_engine.begin() as conn:
        await conn.run_sync(ledger_table().create, checkfirst=True)
    ledger = ledger_projector(nc, sql_engine, settings)

    # When their status is asked for and they are rebuilt (balances beside, then swapped)
    statuses = [await p.status() for p in (balances, ledger)]
    done = [await balances.rebuild(), await ledger.rebuild(), await ledger.rebuild("acme")]

    # Then they are empty read models at 0
    assert [(s["checkpoint"], s["lag"]) for s in statuses] == [(0, 0), (0, 0)]
    assert [(d.events, d.checkpoint) for d in done] == [(0, 0)] * 3
