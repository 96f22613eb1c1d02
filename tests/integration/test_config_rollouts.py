"""Config rollouts (gray release) against the real config service, NATS and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.cohorts import point
from tenantplane.contracts.config import SetConfig, UnsetConfig
from tenantplane.contracts.rollouts import (
    AbortRollout,
    PromoteRollout,
    RolloutCommand,
    SetRolloutPercent,
    StartRollout,
)
from tenantplane.contracts.routing import RegisterVersion, Rollout, SetDefault
from tenantplane.contracts.tenants import OffboardTenant, RegisterTenant, SuspendTenant
from tenantplane.services.config.history import state_at
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.router.sdk import Resolver
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import (
    InvalidConfigValue,
    InvalidRequest,
    InvalidTransition,
)
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis_ops import as_text
from tests.support.cli import ACTOR, send_and_wait, tenantctl
from tests.support.running import eventually
from tests.support.stores import read_models

pytestmark = pytest.mark.integration

TENANTS = [f"t{i:03d}" for i in range(60)]


@pytest.fixture
async def slow_client(nc: NATS, settings: Settings, service: None) -> CommandClient:
    """A client that waits as long as a rollout over every tenant takes."""
    return CommandClient(nc, settings.subjects, timeout=60)


async def roll(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, command: RolloutCommand
) -> dict[str, Any]:
    """Send a rollout command; return its result once every tenant's change is readable."""
    reply = await client.send(command)
    result = dict(reply.result or {})
    if result.get("last_seq") is not None:
        await wait_applied(
            client.nc, redis, settings.subjects, settings.keys, "config", result["last_seq"], 10
        )
    return result


async def onboard(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, own: dict[str, int]
) -> None:
    """Register TENANTS (even ones in region eu, odd in us); `own` rate limits set."""
    for i, tenant in enumerate(TENANTS):
        labels = {"region": "eu" if i % 2 == 0 else "us"}
        await client.send(
            RegisterTenant(tenant_id=tenant, display_name=tenant, labels=labels, **ACTOR)
        )
    for tenant, limit in own.items():
        await client.send(SetConfig(tenant_id=tenant, values={"rate_limit": limit}, **ACTOR))
    last = await client.send(SetConfig(tenant_id=TENANTS[0], values={"features": {}}, **ACTOR))
    assert last.seq is not None
    await wait_applied(client.nc, redis, settings.subjects, settings.keys, "config", last.seq, 10)


async def redis_configs(redis: aioredis.Redis, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every tenant's config hash as Redis holds it."""
    found = {}
    for tenant in TENANTS:
        raw = await redis.hgetall(settings.keys.tenant_config(tenant))
        found[tenant] = {as_text(k): orjson.loads(v) for k, v in raw.items()}
    return found


async def members(redis: aioredis.Redis, settings: Settings, rollout: str) -> set[str]:
    return {as_text(m) for m in await redis.smembers(settings.keys.rollout_members(rollout))}


def cohort(name: str, percent: float, tenants: list[str] = TENANTS) -> set[str]:
    return {t for t in tenants if point(t, name) < percent}


@pytest.fixture
async def sdk(settings: Settings, service: None) -> AsyncIterator[AsyncConfigClient]:
    client = await AsyncConfigClient.connect(settings)
    yield client
    await client.close()


async def test_raising_a_rollout_only_adds_tenants_and_the_sdk_agrees_with_redis(
    slow_client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    sdk: AsyncConfigClient,
) -> None:
    # Given 60 tenants, some with a rate limit of their own, warm in an SDK's cache
    own = {t: 5 for t in TENANTS[::7]}
    await onboard(slow_client, redis, settings, own)
    await sdk.warm_up(TENANTS)
    # When a rollout starts at 10% and is raised to 50% then 100%
    start = StartRollout(rollout="limits", values={"rate_limit": 100}, percent=10, **ACTOR)
    seen: list[set[str]] = []
    for command in (
        start,
        SetRolloutPercent(rollout="limits", percent=50, **ACTOR),
        SetRolloutPercent(rollout="limits", percent=100, **ACTOR),
    ):
        result = await roll(slow_client, redis, settings, command)
        seen.append(await members(redis, settings, "limits"))
        # Then the tenants reached are the first P% of the rollout's cohort
        assert seen[-1] == cohort("limits", command.percent)
        assert result["active"] == len(seen[-1])
        # And Redis, the SDK's pushed cache and the log agree on every tenant's value
        configs = await redis_configs(redis, settings)
        for tenant in TENANTS:
            wanted = 100 if tenant in seen[-1] else own.get(tenant)
            assert configs[tenant].get("rate_limit") == wanted, tenant

            async def pushed(tenant: str = tenant, wanted: int | None = wanted) -> bool:
                return bool((await sdk.get_config(tenant)).get("rate_limit") == wanted)

            await eventually(pushed, 5)
    # And raising only ever added tenants
    assert seen[0] < seen[1] < seen[2] == set(TENANTS)
    assert 2 <= len(seen[0]) <= 14
    assert 18 <= len(seen[1]) <= 42
    # And lowering is refused: it would take tenants out
    with pytest.raises(InvalidRequest, match="abort it instead"):
        await slow_client.send(SetRolloutPercent(rollout="limits", percent=20, **ACTOR))


async def test_abort_puts_every_tenant_back_on_its_own_values(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    # Given tenants with their own limits, before any rollout
    own = {t: 5 for t in TENANTS[:10]}
    await onboard(slow_client, redis, settings, own)
    before = await redis_configs(redis, settings)
    start = StartRollout(
        rollout="flags", values={"rate_limit": 100, "features": {"beta": True}}, percent=50, **ACTOR
    )
    await roll(slow_client, redis, settings, start)
    reached = await members(redis, settings, "flags")
    inside = sorted(reached & set(own))
    # When, during the rollout, members change their own values under it
    changed, cleared = inside[0], inside[1]
    await send_and_wait(
        slow_client, redis, settings,
        SetConfig(tenant_id=changed, values={"rate_limit": 7}, **ACTOR),
    )  # fmt: skip
    await send_and_wait(
        slow_client, redis, settings, UnsetConfig(tenant_id=cleared, keys=("rate_limit",), **ACTOR)
    )
    # Then what they see is still the rollout's value
    during = await redis_configs(redis, settings)
    assert during[changed]["rate_limit"] == during[cleared]["rate_limit"] == 100
    # When the rollout is aborted
    result = await roll(slow_client, redis, settings, AbortRollout(rollout="flags", **ACTOR))
    # Then every tenant sees its own values again, own changes made meanwhile included
    after = await redis_configs(redis, settings)
    expected = {t: dict(c) for t, c in before.items()}
    expected[changed]["rate_limit"] = 7
    del expected[cleared]["rate_limit"]
    assert after == expected
    assert result["status"] == "aborted"
    assert result["changed"] == len(reached)
    assert await members(redis, settings, "flags") == set()
    assert [k async for k in redis.scan_iter(match=f"{settings.keys.root}:tenant:*:own")] == []
    # And the log says the same: no tenant holds anything for the rollout
    state = await state_at(event_log, changed)
    assert (state.effective["rate_limit"], dict(state.held)) == (7, {})
    # And aborting again changes nothing; promoting an aborted rollout is refused
    again = await roll(slow_client, redis, settings, AbortRollout(rollout="flags", **ACTOR))
    assert again["changed"] == 0
    with pytest.raises(InvalidTransition, match="aborted already"):
        await slow_client.send(PromoteRollout(rollout="flags", **ACTOR))


async def test_promote_makes_the_values_every_matched_tenants_own(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    # Given tenants in two regions, some in eu with an explicit limit of their own
    own = {t: 5 for t in TENANTS[:20]}
    await onboard(slow_client, redis, settings, own)
    eu = [t for i, t in enumerate(TENANTS) if i % 2 == 0]
    # When a rollout reaches 30% of eu, its explicit values protected, and is promoted
    start = StartRollout(
        rollout="eu-limits", values={"rate_limit": 100}, percent=30, match={"region": "eu"},
        except_explicit=True, **ACTOR,
    )  # fmt: skip
    started = await roll(slow_client, redis, settings, start)
    reached = await members(redis, settings, "eu-limits")
    assert reached == cohort("eu-limits", 30, eu) - set(own)
    assert started["matched"] == len(eu)
    # And a member sets a value of its own while the rollout holds the key
    late = sorted(reached)[0]
    await send_and_wait(
        slow_client, redis, settings, SetConfig(tenant_id=late, values={"rate_limit": 7}, **ACTOR)
    )
    own[late] = 7
    promoted = await roll(
        slow_client, redis, settings, PromoteRollout(rollout="eu-limits", **ACTOR)
    )
    # Then every eu tenant without its own value has the value as its own; the rest keep theirs
    configs = await redis_configs(redis, settings)
    for tenant in TENANTS:
        wanted = own.get(tenant, 100 if tenant in eu else None)
        assert configs[tenant].get("rate_limit") == wanted, tenant
        state = await state_at(event_log, tenant)
        assert (state.values.get("rate_limit"), dict(state.held)) == (wanted, {}), tenant
    assert promoted["status"] == "promoted"
    assert await members(redis, settings, "eu-limits") == set()
    # And the late own value's history says the promotion kept it
    history = await asyncio.to_thread(tenantctl, settings, "config", "history", late, "-o", "json")
    rows = [r for r in orjson.loads(history.stdout) if r["event"].startswith("config.rollout_left")]
    assert [(r["event"], r["key"], r["old"], r["new"]) for r in rows] == [
        ("config.rollout_left eu-limits (promoted)", "rate_limit", 100, 7),
        ("config.rollout_left eu-limits (promoted)", "rate_limit (own)", 7, 7),
    ]
    # And the key is free for a new rollout once this one ended
    follow = StartRollout(rollout="next", values={"rate_limit": 200}, percent=5, **ACTOR)
    assert (await roll(slow_client, redis, settings, follow))["status"] == "active"


async def test_guards_refuse_before_anything_is_appended(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    await onboard(slow_client, redis, settings, {})
    await roll(
        slow_client, redis, settings,
        StartRollout(rollout="first", values={"rate_limit": 100}, percent=20, **ACTOR),
    )  # fmt: skip
    head = await event_log.head()
    refusals = [
        (StartRollout(rollout="second", values={"rate_limit": 1}, percent=5, **ACTOR),
         InvalidTransition, "first is active over rate_limit"),
        (StartRollout(rollout="bad", values={"rate_limit": -1}, percent=5, **ACTOR),
         InvalidConfigValue, "rate_limit"),
        (StartRollout(rollout="sealed", values={"secret.token": "x"}, percent=5, **ACTOR),
         InvalidRequest, "secret keys are not rolled out"),
        (StartRollout(rollout="first", values={"rate_limit": 9}, percent=20, **ACTOR),
         InvalidTransition, "is active with other values"),
        (SetRolloutPercent(rollout="nothing", percent=5, **ACTOR), InvalidRequest, "no rollout"),
    ]  # fmt: skip
    for command, error, message in refusals:
        with pytest.raises(error, match=message):
            await slow_client.send(command)
    assert await event_log.head() == head


async def test_suspended_and_offboarded_tenants_are_counted_apart(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    await onboard(slow_client, redis, settings, {})
    inside = sorted(cohort("counted", 50))
    await slow_client.send(SuspendTenant(tenant_id=inside[0], **ACTOR))
    await slow_client.send(OffboardTenant(tenant_id=inside[1], **ACTOR))
    start = StartRollout(rollout="counted", values={"rate_limit": 3}, percent=50, **ACTOR)
    result = await roll(slow_client, redis, settings, start)
    assert (result["active"], result["suspended"], result["offboarded"]) == (
        len(inside) - 2, 1, 1,
    )  # fmt: skip
    assert await members(redis, settings, "counted") == set(inside) - {inside[1]}


async def test_history_time_travel_and_the_cli_show_the_rollout(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    # Given a tenant the rollout reaches, with a value of its own
    tenant = sorted(cohort("tour", 50))[0]
    await onboard(slow_client, redis, settings, {tenant: 5})
    before = await slow_client.send(SetConfig(tenant_id=tenant, values={"rate_limit": 6}, **ACTOR))
    # When the CLI starts the rollout and reads it back
    started = await asyncio.to_thread(
        tenantctl, settings, "config", "rollout", "start", "tour", "rate_limit=100",
        "--percent", "50", "-r", "CHG-7",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    status = await asyncio.to_thread(
        tenantctl, settings, "config", "rollout", "status", "tour", "-o", "json"
    )
    assert status.returncode == 0, status.stderr
    shown = orjson.loads(status.stdout)
    assert shown["status"] == "active"
    assert shown["seeing"] == sorted(cohort("tour", 50))
    assert [(h["event"], h["actor"], h["reason"]) for h in shown["history"]] == [
        ("rollout.started", "cli@test", "CHG-7")
    ]
    table = await asyncio.to_thread(tenantctl, settings, "config", "rollout", "status", "tour")
    assert "rollout.started by cli@test: CHG-7" in table.stdout
    # Then the tenant's history names the rollout, who started it and why
    history = await asyncio.to_thread(
        tenantctl, settings, "config", "history", tenant, "-o", "json"
    )
    rows = [r for r in orjson.loads(history.stdout) if r["event"] == "config.rollout_joined tour"]
    assert [(r["key"], r["old"], r["new"], r["reason"]) for r in rows] == [
        ("rate_limit", 6, 100, "CHG-7"),
        ("rate_limit (own)", None, 6, "CHG-7"),
    ]
    # And `config get` shows the value seen now, and --at the value before the rollout
    now = await asyncio.to_thread(tenantctl, settings, "config", "get", tenant, "-o", "json")
    then = await asyncio.to_thread(
        tenantctl, settings, "config", "get", tenant, "--at", str(before.seq), "-o", "json"
    )
    assert {"key": "rate_limit", "value": 100} in orjson.loads(now.stdout)
    assert {"key": "rate_limit", "value": 6} in orjson.loads(then.stdout)
    # And lowering it from the CLI is a refusal the operator can read, not a traceback
    lowered = await asyncio.to_thread(
        tenantctl, settings, "config", "rollout", "set", "tour", "--percent", "10", "-r", "x"
    )
    assert lowered.returncode != 0
    assert "abort it instead" in lowered.stderr


async def test_a_route_rollout_and_a_config_rollout_on_one_cohort_pick_the_same_tenants(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings, router: None
) -> None:
    # Given billing v2 rolled out to 30% of cohort release-42
    await onboard(slow_client, redis, settings, {})
    for command in (
        RegisterVersion(target="billing", version="v1", upstream="http://v1", **ACTOR),
        RegisterVersion(target="billing", version="v2", upstream="http://v2", **ACTOR),
        SetDefault(target="billing", version="v1", **ACTOR),
        Rollout(target="billing", version="v2", percent=30, cohort="release-42", **ACTOR),
    ):
        reply = await slow_client.send(command)
    assert reply.seq is not None
    await wait_applied(slow_client.nc, redis, settings.subjects, settings.keys, "router", reply.seq)
    # When the release's new config goes to 30% of the same cohort
    start = StartRollout(
        rollout="release-42-config", values={"features": {"v2": True}}, percent=30,
        cohort="release-42", **ACTOR,
    )  # fmt: skip
    await roll(slow_client, redis, settings, start)
    # Then the tenants routed to v2 are exactly those that see the new config
    resolver = await Resolver.connect(settings)
    try:
        on_v2 = {t for t in TENANTS if (await resolver.resolve("billing", t)).version == "v2"}
    finally:
        await resolver.close()
    assert on_v2 == await members(redis, settings, "release-42-config")
    assert 6 <= len(on_v2) <= 30


async def test_a_rebuild_from_the_log_gives_the_same_read_model(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    # Given rollouts started, raised, aborted and promoted, with own changes under them
    own = {t: 5 for t in TENANTS[:12]}
    await onboard(slow_client, redis, settings, own)
    for command in (
        StartRollout(rollout="a", values={"rate_limit": 100}, percent=40, **ACTOR),
        StartRollout(rollout="b", values={"features": {"x": 1}}, percent=60, **ACTOR),
        SetRolloutPercent(rollout="a", percent=70, **ACTOR),
    ):
        await roll(slow_client, redis, settings, command)
    for tenant in sorted(cohort("a", 70) & set(own))[:3]:
        await send_and_wait(
            slow_client, redis, settings,
            SetConfig(tenant_id=tenant, values={"rate_limit": 8}, **ACTOR),
        )  # fmt: skip
    await roll(slow_client, redis, settings, AbortRollout(rollout="a", **ACTOR))
    await roll(slow_client, redis, settings, PromoteRollout(rollout="b", **ACTOR))
    await roll(
        slow_client, redis, settings,
        StartRollout(rollout="c", values={"rate_limit": 1}, percent=30, **ACTOR),
    )  # fmt: skip
    live = await read_models(redis, settings)
    # When the config read model is rebuilt from the log
    done = await asyncio.to_thread(tenantctl, settings, "projection", "rebuild", "config")
    assert done.returncode == 0, done.stderr
    # Then it is the same, key for key
    assert await read_models(redis, settings) == live
    assert any(key.endswith(":own") for key in live)


async def test_setting_a_held_key_says_the_own_value_waits_for_the_rollout(
    slow_client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    tenant = sorted(cohort("held", 50))[0]
    await onboard(slow_client, redis, settings, {})
    start = StartRollout(rollout="held", values={"rate_limit": 100}, percent=50, **ACTOR)
    await roll(slow_client, redis, settings, start)
    done = await asyncio.to_thread(
        tenantctl, settings, "config", "set", tenant, "rate_limit=3", "features={}"
    )
    assert done.returncode == 0, done.stderr
    assert f"{tenant} sees a rollout's value of rate_limit" in done.stderr
    assert "features" not in done.stderr
    # And the rollout CLI refuses what it cannot keep: no reason, a key twice
    for args, said in (
        (["-r", " "], "say why"),
        (["-r", "x", "rate_limit=2"], "rate_limit is given twice"),
    ):
        refused = await asyncio.to_thread(
            tenantctl, settings, "config", "rollout", "start", "other", "rate_limit=1",
            "--percent", "5", *args,
        )  # fmt: skip
        assert refused.returncode == 2
        assert said in refused.stderr
