"""R4: bad input against the real config service, projector and CLI.

Commands with hostile values get a clear `invalid_request` and append nothing;
bad messages written straight into the log are parked in the dead-letter
stream with their reason while every other tenant's events apply; the CLI
answers bad arguments with an error line and an exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.registry import MAX_EVENT_BYTES
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import TenantplaneError
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import ACTOR, send_and_wait, tenantctl
from tests.support.events import registered
from tests.support.reporting import report
from tests.support.running import eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

HOSTILE_IDS = [
    "../x", "*", ">", "a b", "acme.evil", "a" * 10_000, "\u0430cme",  # Cyrillic a
    "", "-leading", "UPPER", "tab\there", "nul\x00", "emoji-\U0001f600",
]  # fmt: skip


@pytest.mark.parametrize("tenant_id", HOSTILE_IDS, ids=lambda t: repr(t[:12]))
async def test_a_hostile_tenant_id_is_refused_and_nothing_is_appended(
    client: CommandClient, event_log: EventLog, tenant_id: str
) -> None:
    before = await event_log.head()
    body = {"tenant_id": tenant_id, "display_name": "x", **ACTOR}
    reply = await client.nc.request(
        client.subjects.command("config", RegisterTenant.name), orjson.dumps(body), timeout=5
    )
    answer = orjson.loads(reply.data)
    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_request"
    assert "tenant" in answer["error"]["message"]
    assert "Traceback" not in answer["error"]["message"]
    assert await event_log.head() == before


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"rate_limit": -5}, "rate_limit: -5 is below the minimum"),
        ({"rate_limit": "fast"}, "rate_limit: expected int"),
        ({"jobs.pool": "../Evil Pool"}, "jobs.pool"),
        ({"jobs.max_concurrency": True}, "expected int"),
        ({"": 1}, "key"),
        ({"k" * 300: 1}, "key"),
    ],
)
async def test_an_invalid_config_value_is_refused_with_the_key_named(
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
    values: dict[str, Any],
    fragment: str,
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    before = await event_log.head()
    body = {"tenant_id": "acme", "values": values, **ACTOR}
    reply = await client.nc.request(
        client.subjects.command("config", SetConfig.name), orjson.dumps(body), timeout=5
    )
    error = orjson.loads(reply.data)["error"]
    assert error["code"] in ("invalid_request", "invalid_config_value")
    assert fragment in error["message"]
    assert await event_log.head() == before


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (b"NaN", "must be finite"),
        (b"-Infinity", "must be finite"),
        (b"1e400", "must be finite"),
        (b'[1, {"deep": 100000000000000000000000}]', "beyond 64 bits"),
        (b"-9223372036854775809", "beyond 64 bits"),
    ],
)
async def test_a_number_the_log_cannot_keep_exactly_is_refused(
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
    value: bytes,
    fragment: str,
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    before = await event_log.head()
    body = b'{"tenant_id": "acme", "actor": "t", "values": {"x": ' + value + b"}}"
    reply = await client.nc.request(
        client.subjects.command("config", SetConfig.name), body, timeout=5
    )
    error = orjson.loads(reply.data)["error"]
    assert error["code"] == "invalid_request"
    assert "values.x" in error["message"]
    assert fragment in error["message"]
    assert await event_log.head() == before


async def test_a_secret_too_big_is_refused_naming_key_and_limit_never_the_value(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    before = await event_log.head()
    big = "s3cr3t" * 12_000
    with pytest.raises(TenantplaneError) as refused:
        await client.send(SetConfig(tenant_id="acme", values={"secret.blob": big}, **ACTOR))
    assert refused.value.code == "invalid_config_value"
    assert str(refused.value).startswith("secret.blob: a secret holds at most 65536 bytes")
    assert "s3cr3t" not in str(refused.value)
    assert await event_log.head() == before


async def test_an_oversize_command_is_refused_before_parsing(client: CommandClient) -> None:
    body = b'{"tenant_id": "acme", "values": {"k": "' + b"x" * (MAX_EVENT_BYTES + 1) + b'"}}'
    reply = await client.nc.request(
        client.subjects.command("config", SetConfig.name), body, timeout=5
    )
    error = orjson.loads(reply.data)["error"]
    assert error["code"] == "invalid_request"
    assert "too big" in error["message"]


async def test_bad_messages_in_the_log_are_parked_and_other_tenants_apply(
    service: None, nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    js, subjects = nc.jetstream(), settings.subjects
    good = registered("good").model_dump(mode="json")
    bad = {
        "malformed": b"{not json",
        "unknown-type": orjson.dumps({**good, "type": "tenant.teleported"}),
        "future-version": orjson.dumps({**good, "schema_version": 99}),
        "oversize": orjson.dumps({**good, "reason": "x" * (MAX_EVENT_BYTES + 10)}),
        "hostile-id": orjson.dumps({**good, "tenant_id": "../x"}),
        "not-an-object": b"[1, 2, 3]",
    }
    for tenant, payload in bad.items():
        await js.publish(subjects.lifecycle(tenant), payload)
    appended = await event_log.append_many([registered(f"ok{i}") for i in range(20)])
    reader = ConfigReader(redis, settings.keys)

    async def all_good_applied() -> bool:
        return len(await reader.tenants()) == 20

    await eventually(all_good_applied, timeout=10)
    assert appended[-1].seq > len(bad)

    result = await asyncio.to_thread(tenantctl, settings, "dlq", "list", "-o", "json")
    assert result.returncode == 0, result.stderr
    letters = {subjects.tenant_of(d["subject"]): d["reason"] for d in orjson.loads(result.stdout)}
    assert set(letters) == set(bad)
    assert letters["malformed"].startswith("MalformedMessage")
    assert letters["unknown-type"].startswith("UnknownEventType")
    assert letters["future-version"].startswith("UnknownSchemaVersion")
    assert "exceeds" in letters["oversize"]
    assert letters["hostile-id"].startswith("InvalidEvent")
    assert letters["not-an-object"].startswith("MalformedMessage")
    report("R4-log", bad=len(bad), parked=len(letters), good_applied=20)


CLI_CASES = [
    ["tenant", "create", "../x"],
    ["tenant", "create", "\u0430cme"],
    ["tenant", "show", "*"],
    ["tenant", "show", "a" * 10_000],
    ["config", "set", "acme", "no-equals-sign"],
    ["config", "set", "acme", "rate_limit=-5"],
    ["config", "get", "acme", "--at", "yesterday-ish"],
    ["job", "submit", "acme", ""],
    ["route", "pin", ">", "web", "v1"],
    ["tenant", "list", "-o", "xml"],
    ["pool", "assign", "acme", "Bad Pool!"],
    ["dlq", "redrive", "no-such-projection"],
    ["projection", "rebuild", "nope"],
    ["schedule", "add", "acme", "nightly", "--cron", "61 * * * *", "--kind", "noop"],
]


async def test_bad_cli_arguments_get_an_error_line_never_a_traceback(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    outcomes = []
    for args in CLI_CASES:
        result = await asyncio.to_thread(tenantctl, settings, *args)
        shown = result.stdout + result.stderr
        outcomes.append((args[:2], result.returncode))
        assert result.returncode in (1, 2, 3), (args, shown)
        assert "Traceback" not in shown, (args, shown)
        assert "error" in shown.lower() or "invalid" in shown.lower(), (args, shown)
    report("R4-cli", cases=len(CLI_CASES), codes=sorted({code for _, code in outcomes}))


async def test_refused_input_leaves_the_tenant_unaffected(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    good = SetConfig(tenant_id="acme", values={"rate_limit": 7}, **ACTOR)
    await send_and_wait(client, redis, settings, good)
    for values in ({"rate_limit": -1}, {"jobs.pool": "NO"}):
        with pytest.raises(TenantplaneError):
            await client.send(SetConfig(tenant_id="acme", values=values, **ACTOR))
    assert (await ConfigReader(redis, settings.keys).config("acme"))["rate_limit"] == 7
