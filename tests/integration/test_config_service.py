"""The config service end to end: commands, optimistic concurrency, projection, CLI."""

from __future__ import annotations

import asyncio
import subprocess

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import SetConfig, UnsetConfig
from tenantplane.contracts.tenants import (
    OffboardTenant,
    RegisterTenant,
    ResumeTenant,
    SuspendTenant,
)
from tenantplane.services.config import service as config_service
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import (
    InvalidConfigValue,
    InvalidRequest,
    InvalidTransition,
    TenantExists,
    TenantNotFound,
)
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis_ops import as_text
from tests.support.cli import ACTOR, send_and_wait, tenantctl

pytestmark = pytest.mark.integration


async def test_set_config_is_visible_in_redis_once_applied(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    # Given a registered tenant
    await send_and_wait(
        client, redis, settings, RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    )
    # When a key is set
    values = {"rate_limit": 50, "features": {"beta": True}}
    seq = await send_and_wait(
        client, redis, settings, SetConfig(tenant_id="acme", values=values, **ACTOR)
    )
    # Then Redis holds the typed value and the meta records the config version
    raw = await redis.hgetall(settings.keys.tenant_config("acme"))
    assert {as_text(k): orjson.loads(v) for k, v in raw.items()} == {
        "rate_limit": 50,
        "features": {"beta": True},
    }
    view = await ConfigReader(redis, settings.keys).tenant("acme")
    assert (view.status, view.config_version) == ("active", seq)


async def test_invalid_value_is_refused_and_nothing_is_appended(
    client: CommandClient, event_log: EventLog
) -> None:
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    head = await event_log.head()
    with pytest.raises(InvalidConfigValue, match="rate_limit: -1 is below the minimum 0"):
        await client.send(SetConfig(tenant_id="acme", values={"rate_limit": -1}, **ACTOR))
    with pytest.raises(InvalidConfigValue, match="expected int, got str"):
        await client.send(SetConfig(tenant_id="acme", values={"rate_limit": "fast"}, **ACTOR))
    assert await event_log.head() == head


async def test_invalid_transitions_are_named_errors(client: CommandClient) -> None:
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    with pytest.raises(TenantExists):
        await client.send(RegisterTenant(tenant_id="acme", display_name="Again", **ACTOR))
    with pytest.raises(InvalidTransition, match="it is active, not suspended"):
        await client.send(ResumeTenant(tenant_id="acme", **ACTOR))
    with pytest.raises(InvalidRequest, match="not set for acme: nope"):
        await client.send(UnsetConfig(tenant_id="acme", keys=("nope",), **ACTOR))
    await client.send(OffboardTenant(tenant_id="acme", **ACTOR))
    with pytest.raises(TenantNotFound, match="offboarded"):
        await client.send(SetConfig(tenant_id="acme", values={"a": 1}, **ACTOR))
    with pytest.raises(TenantNotFound):
        await client.send(SuspendTenant(tenant_id="ghost", **ACTOR))


async def test_a_malformed_request_gets_an_invalid_request_reply(
    nc: NATS, settings: Settings, service: None
) -> None:
    subject = settings.subjects.command("config", SetConfig.name)
    msg = await nc.request(subject, b'{"tenant_id": "../x", "values": {}}', timeout=2)
    reply = orjson.loads(msg.data)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "invalid_request"
    assert "tenant_id" in reply["error"]["message"]
    assert "Traceback" not in reply["error"]["message"]


async def test_repeated_command_with_one_idempotency_key_is_applied_once(
    client: CommandClient, event_log: EventLog
) -> None:
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    command = SetConfig(tenant_id="acme", values={"rate_limit": 7}, **ACTOR)
    first, second = await client.send(command), await client.send(command)
    assert second.replayed
    assert second.seq == first.seq
    assert await event_log.head() == first.seq


async def test_commands_racing_across_two_service_replicas_all_apply_once(
    settings: Settings, nc: NATS, redis: aioredis.Redis, service: None, event_log: EventLog
) -> None:
    # Given a second replica of the service in the same queue group
    stop = asyncio.Event()
    replica = asyncio.create_task(config_service.run(settings, stop))
    client = CommandClient(nc, settings.subjects)
    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    await asyncio.sleep(0.3)
    # When 40 commands on one tenant arrive at once, spread over both replicas
    commands = [SetConfig(tenant_id="acme", values={f"k{i}": i}, **ACTOR) for i in range(40)]
    replies = await asyncio.gather(*(client.send(c) for c in commands))
    stop.set()
    await replica
    # Then each was appended exactly once, each at its own sequence
    assert len({r.seq for r in replies}) == 40
    assert await event_log.head() == 41
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", 41)
    assert len(await ConfigReader(redis, settings.keys).config("acme")) == 40


async def test_offboarding_removes_the_tenants_read_model(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    for command in (
        RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR),
        SetConfig(tenant_id="acme", values={"a": 1}, **ACTOR),
        OffboardTenant(tenant_id="acme", **ACTOR),
    ):
        await send_and_wait(client, redis, settings, command)
    assert (
        await redis.exists(settings.keys.tenant_config("acme"), settings.keys.tenant_meta("acme"))
        == 0
    )
    assert await ConfigReader(redis, settings.keys).tenants() == []


async def test_cli_sets_a_key_and_reads_it_back_with_clear_errors(
    settings: Settings, service: None
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return tenantctl(settings, *args)

    created = await asyncio.to_thread(cli, "tenant", "create", "acme", "--plan", "gold")
    assert created.returncode == 0, created.stderr
    changed = await asyncio.to_thread(cli, "config", "set", "acme", "rate_limit=50", "-r", "t42")
    assert changed.returncode == 0, changed.stderr
    shown = await asyncio.to_thread(cli, "config", "get", "acme", "rate_limit", "-o", "json")
    assert orjson.loads(shown.stdout) == [{"key": "rate_limit", "value": 50}]
    refused = await asyncio.to_thread(cli, "config", "set", "acme", "rate_limit=-5")
    assert refused.returncode == 1
    assert "below the minimum" in refused.stderr
    assert "Traceback" not in refused.stderr
    for verb, code in (("suspend", 0), ("resume", 0), ("resume", 1)):
        moved = await asyncio.to_thread(cli, "tenant", verb, "acme", "-r", "billing")
        assert moved.returncode == code, moved.stderr
    assert "it is active, not suspended" in moved.stderr
    bad_id = await asyncio.to_thread(cli, "tenant", "show", "Not/Valid")
    assert bad_id.returncode == 2
    assert "invalid tenant id" in bad_id.stderr


async def test_cli_shows_dead_letters_lag_and_redrives_through_the_projector(
    settings: Settings, service: None, nc: NATS, client: CommandClient, redis: aioredis.Redis
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return tenantctl(settings, *args)

    # Given a tenant, and a malformed event in its config subject
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    await nc.jetstream().publish(settings.subjects.config("acme"), b"{oops")
    last = await client.send(RegisterTenant(tenant_id="beta", display_name="Beta", **ACTOR))
    assert last.seq is not None
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", last.seq)
    # When the operator looks
    letters = await asyncio.to_thread(cli, "dlq", "list", "-o", "json")
    status = await asyncio.to_thread(cli, "projection", "status", "-o", "json")
    redrive = await asyncio.to_thread(cli, "dlq", "redrive", "config", "-o", "json")
    # Then the dead letter is listed with its reason, the projection is caught up with one
    # parked event, and a re-drive (still failing) leaves it parked
    assert [(d["seq"], d["reason"].split(":")[0]) for d in orjson.loads(letters.stdout)] == [
        (2, "MalformedMessage")
    ]
    rows = {r["projection"]: r for r in orjson.loads(status.stdout)}
    assert rows["router"]["lag"] == 0
    assert rows["config"] == {"projection": "config", "store": "redis", "checkpoint": 3,
                   "lag": 0, "parked": 1, "blocked_subjects": 1, "running": True}  # fmt: skip
    assert redrive.returncode == 0, redrive.stderr
    assert orjson.loads(redrive.stdout)["still_parked"] == 1


async def test_one_idempotency_key_used_for_two_tenants_applies_to_both(
    client: CommandClient, event_log: EventLog
) -> None:
    for tenant in ("acme", "beta"):
        await client.send(RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR))
    replies = [
        await client.send(
            SetConfig(tenant_id=tenant, values={"a": 1}, idempotency_key="shared", **ACTOR)
        )
        for tenant in ("acme", "beta")
    ]
    assert [r.replayed for r in replies] == [False, False]
    assert replies[0].seq != replies[1].seq
    assert await event_log.head() == 4
