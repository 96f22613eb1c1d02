"""Fixtures: real servers once per session, a fresh namespace per test.

Chain: servers -> settings (unique namespace) -> nc -> event_log / redis.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from contracts import EVENTS
from services.runtime.connections import connect_nats
from services.runtime.eventlog import EventLog
from services.runtime.settings import Settings
from tests import servers as test_servers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[test_servers.Servers]:
    with test_servers.provide(tmp_path_factory.mktemp("servers")) as provided:
        yield provided


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(servers: test_servers.Servers, namespace: str, tmp_path: Path) -> Settings:
    return Settings(
        nats_url=servers.nats_url,
        redis_url=servers.redis_url,
        namespace=namespace,
        data_dir=tmp_path / "data",
    )


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    client = await connect_nats(settings, "tests")
    yield client
    await _delete_streams(client, settings)
    await client.close()


async def _delete_streams(client: NATS, settings: Settings) -> None:
    js = client.jetstream()
    for stream in (settings.subjects.control_stream, settings.subjects.dead_letter_stream):
        try:
            await js.delete_stream(stream)
        except Exception:
            continue


@pytest.fixture
async def event_log(nc: NATS, settings: Settings) -> EventLog:
    log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
    await log.ensure_streams(duplicate_window_s=settings.duplicate_window_s)
    return log


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{settings.namespace}*")]
    if keys:
        await client.unlink(*keys)
    await client.aclose()
