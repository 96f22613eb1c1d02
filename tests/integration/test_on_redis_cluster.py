"""The config and routing read models, their readers and the CLI on a Redis Cluster.

Every fixture of these tests (the services, the command client, `redis`) runs
with the read models on the shared 3-master cluster instead of the single Redis.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.router.sdk import Resolver
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import tenantctl

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings, cluster_url: str) -> Settings:
    return settings.model_copy(update={"redis_url": cluster_url})


async def test_config_and_routes_are_served_from_a_cluster(
    settings: Settings, router: None, redis: aioredis.Redis
) -> None:
    assert isinstance(redis, RedisCluster)

    async def run(*args: str) -> str:
        done = await asyncio.to_thread(tenantctl, settings, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # Given a tenant, its config and its routing, written through the CLI
    await run("tenant", "create", "acme", "--name", "Acme", "-r", "onboarding")
    await run("tenant", "create", "globex", "--name", "Globex", "-r", "onboarding")
    await run("config", "set", "acme", "rate_limit=50", "-r", "ticket 1")
    for version, port in (("v1", 9001), ("v2", 9002)):
        await run("route", "register", "billing", version, "--upstream", f"http://h:{port}")
    await run("route", "default", "billing", "v1")
    await run("route", "pin", "billing", "acme", "v2")
    # Then the CLI, the SDKs and the documented keys all read them from the cluster
    assert "50" in await run("config", "get", "acme", "rate_limit")
    listed = await run("tenant", "list")
    assert "acme" in listed
    assert "globex" in listed
    assert "v2" in await run("route", "resolve", "billing", "acme")
    assert await redis.hget(settings.keys.tenant_config("acme"), "rate_limit") == b"50"
    sdk = await AsyncConfigClient.connect(settings)
    resolver = await Resolver.connect(settings)
    try:
        assert (await sdk.get_config("acme")).get_int("rate_limit") == 50
        assert (await resolver.resolve("billing", "acme")).version == "v2"
        assert (await resolver.resolve("billing", "globex")).version == "v1"
    finally:
        await sdk.close()
        await resolver.close()
