"""A server that is down or behind a wrong URL reaches callers as `Unavailable`, by name."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.router.sdk import Resolver
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.database import create_engine
from tenantplane.services.runtime.errors import EventLogUnavailable, StoreUnavailable, Unavailable
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.transient import unavailable_from, unavailable_raised

pytestmark = pytest.mark.integration


@pytest.fixture
async def nowhere() -> AsyncIterator[aioredis.Redis]:
    """A Redis client whose server is not running (a closed port)."""
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{embedded.free_port()}")
    yield client
    await client.aclose()


async def test_config_sdk_reads_with_redis_down_raise_unavailable(
    nc: NATS, nowhere: aioredis.Redis, settings: Settings
) -> None:
    # Given a config SDK whose Redis is not running
    sdk = AsyncConfigClient(nc, nowhere, settings.subjects, settings.keys)
    # When a service reads a tenant's config, or warms its cache
    with pytest.raises(Unavailable, match="cannot reach Redis") as raised:
        await sdk.get_config("acme")
    # Then it gets the named error, knowing it was Redis
    assert raised.value.server == "redis"
    with pytest.raises(Unavailable):
        await sdk.warm_up()


async def test_a_cached_config_is_served_while_redis_is_away(
    nc: NATS, settings: Settings, tmp_path: Path
) -> None:
    # Given a config SDK that has read acme's config from a Redis of its own
    server = embedded.redis_server(tmp_path / "redis", persist=False).start()
    client = aioredis.Redis.from_url(server.url)
    try:
        for field, value in {"status": "active", "plan": "gold", "version": "3"}.items():
            await client.hset(settings.keys.tenant_meta("acme"), field, value)
        sdk = AsyncConfigClient(nc, client, settings.subjects, settings.keys)
        config = await sdk.get_config("acme")
        # When Redis stops and the SDK reads acme again, and then beta
        server.stop()
        again = await sdk.get_config("acme", fresh=True)
        # Then acme's last config read is served, and beta, never read, is unavailable
        assert again == config
        with pytest.raises(StoreUnavailable):
            await sdk.get_config("beta")
    finally:
        await client.aclose()
        server.stop()


async def test_routing_sdk_resolves_with_redis_down_raise_unavailable(
    nc: NATS, nowhere: aioredis.Redis, settings: Settings
) -> None:
    resolver = Resolver(nc, nowhere, settings.subjects, settings.keys)
    with pytest.raises(StoreUnavailable, match="cannot reach Redis"):
        await resolver.resolve("billing", "acme")
    with pytest.raises(StoreUnavailable):
        await resolver.warm_up()


async def test_a_stopped_nats_is_unavailable_naming_nats(settings: Settings) -> None:
    stopped = settings.model_copy(update={"nats_url": f"nats://127.0.0.1:{embedded.free_port()}"})
    with pytest.raises(EventLogUnavailable, match="cannot connect to NATS") as raised:
        await connect_nats(stopped, "tests")
    assert raised.value.server == "nats"


async def test_a_request_nobody_serves_is_unavailable(nc: NATS) -> None:
    # Given a connected client, when it asks on a subject no service serves
    async def ask() -> None:
        with unavailable_raised():
            await nc.request("nobody.serves.this", b"", timeout=0.5)

    # Then it is unavailable, and NATS is not blamed: it answered
    with pytest.raises(Unavailable, match="is the service running") as raised:
        await ask()
    assert raised.value.server is None


async def select_one(engine: AsyncEngine, query: str = "SELECT 1") -> None:
    with unavailable_raised():
        async with engine.connect() as conn:
            await conn.execute(text(query))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_an_unreachable_database_is_unavailable(kind: str, tmp_path: Path) -> None:
    # Given a database URL that leads nowhere (a directory as SQLite file; a closed port)
    url = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path}",
        "postgresql": f"postgresql+psycopg://postgres@127.0.0.1:{embedded.free_port()}/test",
    }[kind]
    engine = create_engine(url)
    try:
        with pytest.raises(StoreUnavailable, match="cannot reach the SQL database") as raised:
            await select_one(engine)
    finally:
        await engine.dispose()
        await _aiosqlite_threads_done()
    # One line: the driver's hints on further lines are joined
    assert "\n" not in raised.value.message
    assert raised.value.server == "database"


async def test_a_missing_table_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(OperationalError, match="no such table") as raised:
            await select_one(engine, "SELECT * FROM no_such_table")
    finally:
        await engine.dispose()
        await _aiosqlite_threads_done()
    assert unavailable_from(raised.value) is None


async def _aiosqlite_threads_done() -> None:
    """Let aiosqlite's connection threads end while this test's loop still runs: a thread
    of a failed connection otherwise answers into the closed loop during the next test."""
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 2.0)
