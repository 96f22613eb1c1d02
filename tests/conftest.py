"""Fixtures: real servers once per session, a fresh namespace per test.

Chain: servers -> settings (unique namespace) -> nc -> event_log / redis; the
services (config, router, scheduler, worker) come from `tests.support.services`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts import EVENTS
from tenantplane.services.config.secrets import new_master_key
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.database import create_engine, migrate
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tests import servers as test_servers
from tests.support import stores

pytest_plugins = ["tests.support.services", "tests.support.ops"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", help="run reliability tests at their full sizes"
    )


@pytest.fixture(scope="session")
def long(request: pytest.FixtureRequest) -> bool:
    """Whether reliability tests run at full size (`--long`)."""
    return bool(request.config.getoption("--long"))


MASTER_KEY = new_master_key()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[test_servers.Servers]:
    with test_servers.provide(tmp_path_factory.mktemp("servers")) as provided:
        yield provided


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis Cluster (3 masters, a replica each) shared by the tests that only read and
    write it; each keeps to its own namespace, as on the shared single Redis."""
    with test_servers.redis_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster if isinstance(cluster, str) else cluster.url


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(servers: test_servers.Servers, namespace: str, tmp_path: Path) -> Settings:
    return Settings(
        nats_url=servers.nats_url,
        redis_url=servers.redis_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'data' / 'tenantplane.db'}",
        namespace=namespace,
        data_dir=tmp_path / "data",
        secrets_master_keys=SecretStr(MASTER_KEY),
    )


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    client = await connect_nats(settings, "tests")
    yield client
    await _delete_streams(client, settings)
    await client.close()


async def _delete_streams(client: NATS, settings: Settings) -> None:
    js = client.jetstream()
    subjects = settings.subjects
    for stream in (subjects.control_stream, subjects.jobs_stream, subjects.dead_letter_stream):
        try:
            await js.delete_stream(stream)
        except Exception:
            continue


@pytest.fixture
async def event_log(nc: NATS, settings: Settings) -> EventLog:
    log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
    await log.ensure_streams(duplicate_window_s=settings.duplicate_window_s)
    return log


@contextlib.asynccontextmanager
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A Redis client; the namespace's keys are deleted at exit."""
    client = connect_redis(settings)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{settings.namespace}*")]
        if keys:
            await client.unlink(*keys)
        await client.aclose()


@contextlib.asynccontextmanager
async def sql_database(
    kind: str, servers: test_servers.Servers, tmp_path: Path, namespace: str
) -> AsyncIterator[AsyncEngine]:
    """A migrated database: a fresh SQLite file, or a fresh schema in PostgreSQL."""
    if kind == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'read.db'}")
        try:
            await migrate(engine)
            yield engine
        finally:
            await engine.dispose()
        return
    admin = create_engine(servers.postgres_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{namespace}"'))
    engine = create_engine(servers.postgres_url, schema=namespace)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{namespace}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    async with redis_client(settings) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgresql"])
async def sql_engine(
    request: pytest.FixtureRequest, servers: test_servers.Servers, tmp_path: Path, namespace: str
) -> AsyncIterator[AsyncEngine]:
    async with sql_database(request.param, servers, tmp_path, namespace) as engine:
        yield engine


@pytest.fixture(params=["redis", "redis-cluster", "sqlite", "postgresql", "memory"])
async def harness(
    request: pytest.FixtureRequest,
    nc: NATS,
    settings: Settings,
    servers: test_servers.Servers,
    tmp_path: Path,
) -> AsyncIterator[stores.Harness]:
    """The counting projection on each store adapter."""
    if request.param.startswith("redis"):
        if request.param == "redis-cluster":
            cluster = request.getfixturevalue("cluster_url")
            settings = settings.model_copy(update={"redis_url": cluster})
        async with redis_client(settings) as client:
            yield stores.redis_harness(nc, client, settings)
        return
    if request.param == "memory":
        yield stores.memory_harness(nc, settings)
        return
    async with sql_database(request.param, servers, tmp_path, settings.namespace) as engine:
        built = stores.sql_harness(nc, engine, settings, request.param)
        assert built.setup is not None
        await built.setup()
        yield built
