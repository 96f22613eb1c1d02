"""The config SDK: cached reads, push refresh, staleness bound, typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant, SuspendTenant
from tenantplane.services.config.sdk import AsyncConfigClient, ConfigClient
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import InvalidConfigValue, TenantNotFound, TenantSuspended
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import ACTOR, send_and_wait, tenantctl
from tests.support.events import registered
from tests.support.running import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def sdk(settings: Settings, service: None) -> AsyncIterator[AsyncConfigClient]:
    client = await AsyncConfigClient.connect(settings)
    yield client
    await client.close()


async def onboard(client: CommandClient, redis: aioredis.Redis, settings: Settings) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    values = SetConfig(tenant_id="acme", values={"rate_limit": 10}, **ACTOR)
    await send_and_wait(client, redis, settings, values)


async def test_a_cli_change_reaches_a_cached_reader_by_push(
    sdk: AsyncConfigClient, client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    # Given a reader holding acme's config in its cache
    await onboard(client, redis, settings)
    assert (await sdk.get_config("acme")).get_int("rate_limit") == 10
    # When another process (the CLI) changes a key
    done = await asyncio.to_thread(tenantctl, settings, "config", "set", "acme", "rate_limit=75")
    assert done.returncode == 0, done.stderr
    # Then the cached entry itself is refreshed, with no read asking for it

    async def pushed() -> bool:
        cached = sdk.cached("acme")
        return cached is not None and cached.get("rate_limit") == 75

    await eventually(pushed, timeout=2)


async def test_change_listeners_hear_each_change_of_a_watched_tenant(
    sdk: AsyncConfigClient, client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    await onboard(client, redis, settings)
    await sdk.get_config("acme")  # watched from now on
    heard: list[tuple[str, object]] = []
    sdk.on_change(lambda tenant, config: heard.append((tenant, config.get("rate_limit"))))
    for value in (11, 12):
        await client.send(SetConfig(tenant_id="acme", values={"rate_limit": value}, **ACTOR))

    async def both_heard() -> bool:
        return ("acme", 12) in heard

    await eventually(both_heard, timeout=3)
    assert all(tenant == "acme" for tenant, _ in heard)


async def test_unknown_and_suspended_tenants_are_typed_errors(
    sdk: AsyncConfigClient, client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    await onboard(client, redis, settings)
    with pytest.raises(TenantNotFound):
        await sdk.get_config("ghost")
    await send_and_wait(client, redis, settings, SuspendTenant(tenant_id="acme", **ACTOR))
    await eventually(lambda: _status(sdk, "suspended"))
    with pytest.raises(TenantSuspended):
        await sdk.get_config("acme")
    assert (await sdk.get_config("acme", allow_suspended=True)).status == "suspended"


async def _status(sdk: AsyncConfigClient, status: str) -> bool:
    return (await sdk.get_config("acme", allow_suspended=True)).status == status


async def test_typed_accessors_use_schema_defaults_and_check_types(
    sdk: AsyncConfigClient, client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    await onboard(client, redis, settings)
    config = await sdk.get_config("acme")
    assert config.get_int("jobs.max_concurrency") == 4  # the schema's default
    assert config.get_float("rate_limit") == 10.0
    assert dict(config)["rate_limit"] == 10
    with pytest.raises(InvalidConfigValue, match="not bool"):
        config.get_bool("rate_limit")
    with pytest.raises(KeyError, match="no default"):
        config.get_str("nope")


async def test_warm_up_loads_every_tenant_and_staleness_is_bounded(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    await onboard(client, redis, settings)
    sdk = await AsyncConfigClient.connect(settings, max_staleness_s=0.05)
    try:
        assert await sdk.warm_up() == 1
        assert sdk.cached("acme") is not None
        await asyncio.sleep(0.1)
        assert sdk.cached("acme") is None  # too old to serve without reading again
        assert (await sdk.get_config("acme")).get_int("rate_limit") == 10
    finally:
        await sdk.close()


async def test_warm_up_loads_more_tenants_than_the_redis_connection_pool(
    service: None, nc: NATS, event_log: EventLog, redis: aioredis.Redis, settings: Settings
) -> None:
    """Found by the P7 benchmark: a warm-up of 10,000 tenants loaded 100 of them."""
    appended = await event_log.append_many([registered(f"t{i}") for i in range(250)])
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", appended[-1].seq, 10)
    sdk = await AsyncConfigClient.connect(settings)
    try:
        assert await sdk.warm_up() == 250
    finally:
        await sdk.close()


async def test_the_threaded_client_serves_cached_reads(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    await onboard(client, redis, settings)

    def read_twice() -> tuple[int, int]:
        sync = ConfigClient(settings)
        try:
            first = sync.get_config("acme").get_int("rate_limit")
            return first, sync.get_config("acme").version
        finally:
            sync.close()

    limit, version = await asyncio.to_thread(read_twice)
    assert limit == 10
    assert version == 2
