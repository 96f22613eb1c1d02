"""History (who/when/why/old→new) and time travel, computed from the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from tenantplane.contracts.config import SetConfig, UnsetConfig
from tenantplane.contracts.tenants import RegisterTenant, SuspendTenant
from tenantplane.services.config.history import history, state_at
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import InvalidRequest
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.timetravel import parse_point
from tests.support.cli import send_and_wait, tenantctl

pytestmark = pytest.mark.integration


async def make_history(client: CommandClient, redis: aioredis.Redis, settings: Settings) -> int:
    """acme: registered, limit 10 (alice), limit 20 (bob), suspended, limit unset. Returns
    the sequence at which the limit was 10."""
    commands = [
        RegisterTenant(tenant_id="acme", display_name="Acme", actor="ops", reason="signed"),
        SetConfig(tenant_id="acme", values={"rate_limit": 10}, actor="alice", reason="start"),
        SetConfig(tenant_id="acme", values={"rate_limit": 20}, actor="bob", reason="grew"),
        SuspendTenant(tenant_id="acme", actor="billing", reason="unpaid"),
        UnsetConfig(tenant_id="acme", keys=("rate_limit",), actor="carol", reason="default"),
    ]
    seqs = [await send_and_wait(client, redis, settings, c) for c in commands]
    return seqs[1]


async def test_history_shows_actor_reason_and_old_to_new(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    await make_history(client, redis, settings)
    changes = await history(event_log, "acme", key="rate_limit")
    assert [(c.actor, c.reason, c.old, c.new) for c in changes] == [
        ("alice", "start", None, 10),
        ("bob", "grew", 10, 20),
        ("carol", "default", 20, None),
    ]
    lifecycle = [c for c in await history(event_log, "acme") if c.key is None]
    assert [(c.event, c.old, c.new) for c in lifecycle] == [
        ("tenant.registered", None, "active"),
        ("tenant.suspended", "active", "suspended"),
    ]


async def test_state_at_a_sequence_or_time_returns_the_earlier_value(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    ten_at = await make_history(client, redis, settings)
    assert (await state_at(event_log, "acme", seq=ten_at)).values == {"rate_limit": 10}
    assert (await state_at(event_log, "acme")).values == {}
    before = await state_at(event_log, "acme", at=datetime(2000, 1, 1, tzinfo=UTC))
    assert not before.exists


async def test_cli_history_and_get_at(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    ten_at = await make_history(client, redis, settings)
    shown = await asyncio.to_thread(
        tenantctl, settings, "config", "history", "acme", "--key", "rate_limit", "-o", "json"
    )
    assert [row["actor"] for row in orjson.loads(shown.stdout)] == ["alice", "bob", "carol"]
    # And at 80 columns the table fits, each change one line from old to new
    narrow = await asyncio.to_thread(
        tenantctl, settings, "config", "history", "acme", "--key", "rate_limit",
        env={"COLUMNS": "80"},
    )  # fmt: skip
    lines = narrow.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert [line.split()[-2:] for line in lines if "alice" in line or "bob" in line] == [
        ["10", "start"],
        ["20", "grew"],
    ]
    earlier = await asyncio.to_thread(
        tenantctl, settings, "config", "get", "acme", "--at", str(ten_at), "-o", "json"
    )
    assert orjson.loads(earlier.stdout) == [{"key": "rate_limit", "value": 10}]
    bad = await asyncio.to_thread(tenantctl, settings, "config", "get", "acme", "--at", "soon")
    assert bad.returncode == 2  # a malformed argument: bad usage
    assert "give a sequence" in bad.stderr


def test_points_in_time_parse_as_sequence_time_or_age() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_point("42") == (42, None)
    assert parse_point("90m", now) == (None, datetime(2026, 11, 23, 10, 30, tzinfo=UTC))
    assert parse_point("2026-11-23T08:00") == (None, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    with pytest.raises(InvalidRequest):
        parse_point("yesterday-ish")


async def test_revert_puts_the_config_back_as_one_event_with_its_secrets(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    # Given a tenant whose config, secret included, was changed after a good point
    register = RegisterTenant(tenant_id="acme", display_name="Acme", actor="ops")
    await send_and_wait(client, redis, settings, register)
    good = SetConfig(
        tenant_id="acme", values={"rate_limit": 10, "secret.token": "GOOD-token-1"}, actor="al"
    )
    good_at = await send_and_wait(client, redis, settings, good)
    later = SetConfig(
        tenant_id="acme", values={"rate_limit": 99, "extra": 1, "secret.token": "BAD-token-2"},
        actor="bo",
    )  # fmt: skip
    await send_and_wait(client, redis, settings, later)

    async def revert(*extra: str) -> list[dict[str, object]]:
        done = await asyncio.to_thread(
            tenantctl, settings, "config", "revert", "acme", "--to", str(good_at),
            "-r", "undo ticket 7", "-o", "json", *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        for text in (done.stdout, done.stderr):
            assert "token-" not in text
        rows: list[dict[str, object]] = orjson.loads(done.stdout)
        return rows

    # When it is reverted to the good point (after a dry run that changes nothing)
    dry = await revert("--dry-run")
    assert {r["key"] for r in dry} == {"rate_limit", "extra", "secret.token"}
    assert (await state_at(event_log, "acme")).values == {"rate_limit": 99, "extra": 1}
    head = await event_log.head()
    await revert()
    # Then one event put it back, the secret too, and history says why
    assert await event_log.head() == head + 1
    now = await state_at(event_log, "acme")
    assert now.values == {"rate_limit": 10}
    sdk = await AsyncConfigClient.connect(settings)
    try:
        assert await sdk.secrets("acme") == {"secret.token": "GOOD-token-1"}
    finally:
        await sdk.close()
    last = (await history(event_log, "acme"))[-1]
    assert (last.event, last.reason) == ("config.replaced", f"revert to {good_at}: undo ticket 7")
    # And reverting again changes nothing
    assert await revert() == []
    assert await event_log.head() == head + 1
