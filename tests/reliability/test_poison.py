"""R11: poison events on one tenant's config subject.

Garbage, an unknown type, a future schema version and an event whose envelope
names another tenant land on acme's config subject. Other tenants go on; acme's
commands answer `aggregate_blocked` naming the sequence; each `dlq discard`
moves the block to the next bad event, and after the last one acme is
writable, its history and time travel work, and nothing reached another tenant.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import ConfigValuesSet, SetConfig
from tenantplane.contracts.discards import DiscardEvent
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import AggregateBlocked, EventTooLarge, InvalidRequest
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import ACTOR, send_and_wait, tenantctl
from tests.support.reporting import report
from tests.support.running import eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _poison(good: dict[str, object]) -> dict[str, bytes]:
    return {
        "garbage": b"\x00\xffnot an event",
        "unknown type": orjson.dumps({**good, "type": "config.teleported"}),
        "future version": orjson.dumps({**good, "schema_version": 99}),
        "other tenant": orjson.dumps({**good, "tenant_id": "other"}),
    }


async def test_poison_blocks_only_its_tenant_until_each_event_is_discarded(
    client: CommandClient,
    nc: NATS,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    # Given two tenants, and four poison events on acme's config subject
    for tenant in ("acme", "other"):
        await send_and_wait(
            client, redis, settings, RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR)
        )
    await send_and_wait(
        client, redis, settings, SetConfig(tenant_id="acme", values={"rate_limit": 5}, **ACTOR)
    )
    mismatched = Envelope.wrap(
        ConfigValuesSet(values={"rate_limit": 666}), tenant_id="other", actor="mallory"
    )
    good = mismatched.model_dump(mode="json")
    subject = settings.subjects.config("acme")
    poison = {}
    for name, payload in _poison(good).items():
        ack = await nc.jetstream().publish(subject, payload)
        poison[name] = ack.seq

    # When other tenants keep working
    await send_and_wait(
        client, redis, settings, SetConfig(tenant_id="other", values={"rate_limit": 9}, **ACTOR)
    )
    reader = ConfigReader(redis, settings.keys)
    assert (await reader.config("other"))["rate_limit"] == 9

    # Then acme's commands name the first poison event, and so does each next one
    for name, seq in poison.items():
        with pytest.raises(AggregateBlocked) as blocked:
            await client.send(SetConfig(tenant_id="acme", values={"rate_limit": 6}, **ACTOR))
        assert blocked.value.seq == seq, name
        assert f"dlq discard {seq}" in blocked.value.message
        result = await asyncio.to_thread(
            tenantctl, settings, "dlq", "discard", str(seq), "-r", f"{name} from a test client"
        )
        assert result.returncode == 0, result.stdout + result.stderr

    # And after the last discard acme is writable, and its read model catches up
    seq = await send_and_wait(
        client, redis, settings, SetConfig(tenant_id="acme", values={"rate_limit": 7}, **ACTOR)
    )
    assert (await reader.config("acme"))["rate_limit"] == 7
    assert (await reader.config("other"))["rate_limit"] == 9  # 666 never applied anywhere

    # And history shows the discards with who and why; time travel skips the poison
    history = await asyncio.to_thread(
        tenantctl, settings, "config", "history", "acme", "-o", "json"
    )
    assert history.returncode == 0, history.stderr
    rows = orjson.loads(history.stdout)
    discards = [r for r in rows if r["event"] == "event.discarded"]
    assert [r["new"] for r in discards] == [f"discarded event {s}" for s in poison.values()]
    assert all(r["reason"].endswith("from a test client") for r in discards)
    at = await asyncio.to_thread(
        tenantctl, settings, "config", "get", "acme", "--at", str(seq - 1), "-o", "json"
    )
    assert at.returncode == 0, at.stderr
    assert {"key": "rate_limit", "value": 5} in orjson.loads(at.stdout)

    async def nothing_parked() -> bool:
        listed = await asyncio.to_thread(tenantctl, settings, "dlq", "list", "-o", "json")
        return listed.returncode == 0 and orjson.loads(listed.stdout) == []

    await eventually(nothing_parked, timeout=10, interval=0.5)
    report("R11", poison=len(poison), discarded=len(discards))


async def test_a_valid_event_cannot_be_discarded(
    client: CommandClient, redis: aioredis.Redis, settings: Settings
) -> None:
    seq = await send_and_wait(
        client, redis, settings, RegisterTenant(tenant_id="acme", display_name="A", **ACTOR)
    )
    with pytest.raises(InvalidRequest, match="readable"):
        await client.send(DiscardEvent(seq=seq, **ACTOR))


async def test_an_event_over_the_size_limit_is_refused_before_it_is_appended(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    await send_and_wait(
        client, redis, settings, RegisterTenant(tenant_id="acme", display_name="A", **ACTOR)
    )
    before = await event_log.head()
    # A command under the request limit whose secrets, once sealed, are over it.
    values = {f"secret.k{i}": "x" * 10_000 for i in range(20)}
    with pytest.raises(EventTooLarge, match="limit"):
        await client.send(SetConfig(tenant_id="acme", values=values, **ACTOR))
    assert await event_log.head() == before
