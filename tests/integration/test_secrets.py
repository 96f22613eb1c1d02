"""Secret config values: sealed in the log, redacted for operators, revealed to their tenant."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.contracts.commands import ErrorCode
from tenantplane.contracts.config import RevealSecrets, SealedValue, SetConfig
from tenantplane.contracts.tenants import OffboardTenant, RegisterTenant
from tenantplane.services.config import service as config_service
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.config.secrets import (
    SecretBox,
    SecretUnavailable,
    new_master_key,
    tenant_keys,
)
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.consumers import read_raw
from tenantplane.services.runtime.database import create_engine
from tenantplane.services.runtime.errors import InvalidRequest, TenantNotFound, TenantplaneError
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis_ops import as_text
from tenantplane.services.security.sealing import OneTimeKey
from tests.support.cli import ACTOR, send_and_wait, tenantctl
from tests.support.services import running_service

pytestmark = pytest.mark.integration
PLAIN = "hunter2-very-secret"


async def test_box_seals_and_opens_only_for_the_same_tenant(sql_engine: AsyncEngine) -> None:
    box = SecretBox(sql_engine, "ns", [new_master_key()])
    sealed = await box.seal("acme", {"token": PLAIN})
    assert PLAIN not in sealed.ciphertext
    assert await box.open("acme", sealed) == {"token": PLAIN}
    with pytest.raises(SecretUnavailable, match="not a key of tenant beta"):
        await box.open("beta", sealed)


async def test_shredding_a_tenants_keys_makes_its_secrets_unreadable(
    sql_engine: AsyncEngine,
) -> None:
    box = SecretBox(sql_engine, "ns", [new_master_key()])
    sealed = await box.seal("acme", PLAIN)
    assert await box.shred("acme") == 1
    with pytest.raises(SecretUnavailable, match="destroyed"):
        await box.open("acme", sealed)


async def test_shredding_leaves_no_copy_of_the_wrapped_key_in_the_databases_files(
    sql_engine: AsyncEngine,
) -> None:
    box = SecretBox(sql_engine, "ns", [new_master_key()])
    await box.seal("acme", PLAIN)
    async with sql_engine.connect() as conn:
        wrapped = (await conn.execute(select(tenant_keys.c.wrapped))).scalar_one().encode()
    if sql_engine.dialect.name == "sqlite":
        files = Path(str(sql_engine.url.database)).parent.glob("read.db*")
        assert any(wrapped in f.read_bytes() for f in files)  # the check can see it
        await box.shred("acme")
        for file in Path(str(sql_engine.url.database)).parent.glob("read.db*"):
            assert wrapped not in file.read_bytes(), file
    else:
        # PostgreSQL's files are the server's own; that the table was rewritten into
        # a new file (which holds only live rows) is what can be seen from here.
        filenode = text(f"SELECT pg_relation_filenode('{tenant_keys.name}')")
        async with sql_engine.connect() as conn:
            before = (await conn.execute(filenode)).scalar_one()
        await box.shred("acme")
        async with sql_engine.connect() as conn:
            assert (await conn.execute(filenode)).scalar_one() != before
            assert (await conn.execute(select(tenant_keys))).all() == []


async def test_an_offboarding_the_log_refuses_keeps_the_key_and_the_tenant(
    settings: Settings, service: None, nc: NATS, client: CommandClient, redis: aioredis.Redis
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    secret = SetConfig(tenant_id="acme", values={"secret.api_token": PLAIN}, **ACTOR)
    await send_and_wait(client, redis, settings, secret)
    # Given a log that takes no more events (a sealed stream refuses every append)
    js = nc.jetstream()
    config = (await js.stream_info(settings.subjects.control_stream)).config
    await js.update_stream(replace(config, sealed=True))
    # When the tenant is offboarded with shredding, the append fails
    with pytest.raises(TenantplaneError):
        await client.send(OffboardTenant(tenant_id="acme", shred_secrets=True, **ACTOR))
    # Then the tenant is still active and its secrets still open
    sdk = await AsyncConfigClient.connect(settings)
    try:
        assert (await sdk.get_config("acme")).status == "active"
        assert await sdk.secrets("acme") == {"secret.api_token": PLAIN}
    finally:
        await sdk.close()


async def test_master_key_rotation_rewraps_every_data_key(sql_engine: AsyncEngine) -> None:
    old, new = new_master_key(), new_master_key()
    sealed = await SecretBox(sql_engine, "ns", [old]).seal("acme", PLAIN)
    rotating = SecretBox(sql_engine, "ns", [new, old])
    assert await rotating.rewrap() == 1
    assert await SecretBox(sql_engine, "ns", [new]).open("acme", sealed) == PLAIN
    with pytest.raises(SecretUnavailable, match="no configured master key"):
        await SecretBox(sql_engine, "ns", [old]).open("acme", sealed)


async def test_secrets_never_appear_in_plain_text_in_the_log_or_cli(
    settings: Settings, service: None, nc: NATS, client: CommandClient, redis: aioredis.Redis
) -> None:
    # Given a tenant with a secret set through the CLI
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    done = await asyncio.to_thread(
        tenantctl, settings, "config", "set", "acme", f"secret.api_token={PLAIN}", "rate_limit=5"
    )
    assert done.returncode == 0, done.stderr
    # Then the raw stream, Redis and every CLI view hold no plain text
    raw = [m.data async for m in read_raw(nc.jetstream(), settings.subjects.control_stream, ">")]
    assert raw
    assert not any(PLAIN.encode() in data for data in raw)
    stored = await redis.hgetall(settings.keys.tenant_config("acme"))
    assert not any(PLAIN in as_text(value) for value in stored.values())
    shown = await asyncio.to_thread(tenantctl, settings, "config", "get", "acme", "-o", "json")
    history = await asyncio.to_thread(tenantctl, settings, "config", "history", "acme")
    assert {r["key"]: r["value"] for r in orjson.loads(shown.stdout)}["secret.api_token"] == (
        "<secret>"
    )
    for output in (done.stdout, shown.stdout, history.stdout, done.stderr, history.stderr):
        assert PLAIN not in output


async def test_a_tenants_reader_gets_its_secrets_and_a_repeat_appends_nothing(
    settings: Settings, service: None, client: CommandClient, redis: aioredis.Redis
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    secret = SetConfig(tenant_id="acme", values={"secret.api_token": PLAIN}, **ACTOR)
    first = await client.send(secret)
    again = await client.send(SetConfig(tenant_id="acme", values=secret.values, **ACTOR))
    assert first.seq is not None
    assert again.events == ()  # the same value again changes nothing
    sdk = await AsyncConfigClient.connect(settings)
    try:
        assert await sdk.secrets("acme") == {"secret.api_token": PLAIN}
        with pytest.raises(InvalidRequest, match=r"no secret secret\.other"):
            await sdk.secrets("acme", "secret.other")
        # When the tenant is offboarded with shredding, the secret is gone for good
        shred = OffboardTenant(tenant_id="acme", shred_secrets=True, **ACTOR)
        await send_and_wait(client, redis, settings, shred)
        with pytest.raises(TenantNotFound):
            await sdk.secrets("acme")
    finally:
        await sdk.close()


async def test_a_secret_without_a_master_key_is_refused_clearly(
    settings: Settings, nc: NATS
) -> None:
    keyless = settings.model_copy(update={"secrets_master_keys": None})
    stop = asyncio.Event()
    task = asyncio.create_task(config_service.run(keyless, stop))
    try:
        client = CommandClient(nc, settings.subjects)
        for _ in range(100):
            try:
                await client.send(RegisterTenant(tenant_id="acme", display_name="A", **ACTOR))
                break
            except Exception:
                await asyncio.sleep(0.05)
        with pytest.raises(InvalidRequest, match="need a master key"):
            await client.send(SetConfig(tenant_id="acme", values={"secret.x": "y"}, **ACTOR))
    finally:
        stop.set()
        await task


async def test_cli_rewrap_moves_data_keys_to_the_new_master_key(
    settings: Settings, service: None, client: CommandClient, redis: aioredis.Redis, nc: NATS
) -> None:
    register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
    await send_and_wait(client, redis, settings, register)
    await client.send(SetConfig(tenant_id="acme", values={"secret.k": PLAIN}, **ACTOR))
    old = settings.master_keys()[0]
    new = new_master_key()
    env = {"TENANTPLANE_SECRETS_MASTER_KEYS": f"{new},{old}"}
    env["TENANTPLANE_DATABASE_URL"] = settings.database_url
    done = await asyncio.to_thread(tenantctl, settings, "secrets", "rewrap", env=env)
    assert done.returncode == 0, done.stderr
    assert "re-wrapped 1 data keys" in done.stdout
    # Then a box holding only the new master key opens the stored secret
    assert await reveal(client, "acme") == {"secret.k": PLAIN}
    await wait_applied(nc, redis, settings.subjects, settings.keys, "config", 2)
    stored = await redis.hget(settings.keys.tenant_config("acme"), "secret.k")
    assert stored is not None
    sealed = SealedValue.model_validate(orjson.loads(stored)["$sealed"])
    engine = create_engine(settings.database_url)
    try:
        assert await SecretBox(engine, settings.namespace, [new]).open("acme", sealed) == PLAIN
    finally:
        await engine.dispose()


async def test_a_secret_the_service_cannot_open_reaches_callers_as_secret_unavailable(
    settings: Settings, nc: NATS, redis: aioredis.Redis
) -> None:
    # Given a tenant secret sealed by a config service holding the master key
    probe = settings.subjects.command("config", RegisterTenant.name)
    client = CommandClient(nc, settings.subjects)
    async with running_service(settings, config_service.run, probe):
        register = RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR)
        await send_and_wait(client, redis, settings, register)
        await client.send(SetConfig(tenant_id="acme", values={"secret.k": PLAIN}, **ACTOR))
    # When the service comes back with a different master key, and a reader asks
    rekeyed = settings.model_copy(update={"secrets_master_keys": SecretStr(new_master_key())})
    async with running_service(rekeyed, config_service.run, probe):
        with pytest.raises(SecretUnavailable, match="no configured master key") as raised:
            await reveal(client, "acme")
        sdk = await AsyncConfigClient.connect(settings)
        try:
            with pytest.raises(SecretUnavailable):
                await sdk.secrets("acme")
        finally:
            await sdk.close()
    # Then the caller catches SecretUnavailable by name, not an internal error
    assert raised.value.code is ErrorCode.SECRET_UNAVAILABLE
    assert raised.value.details == {"tenant_id": "acme"}


async def reveal(client: CommandClient, tenant: str, pool: str = "default") -> dict[str, Any]:
    """A tenant's secrets as a pool asks for them: sealed to a one-time key, opened here."""
    key = OneTimeKey.new()
    command = RevealSecrets(tenant_id=tenant, pool=pool, public_key=key.public, **ACTOR)
    reply = await client.send(command)
    assert reply.result is not None
    opened: dict[str, Any] = orjson.loads(key.open(reply.result["sealed"]))
    return opened


async def test_a_reveal_is_sealed_on_the_wire_scoped_to_its_pool_and_audited(
    client: CommandClient, nc: NATS, redis: aioredis.Redis, settings: Settings
) -> None:
    # Given a tenant with a secret, served by the default pool, and a passive listener
    # on every inbox
    await send_and_wait(
        client, redis, settings, RegisterTenant(tenant_id="acme", display_name="A", **ACTOR)
    )
    await client.send(SetConfig(tenant_id="acme", values={"secret.k": PLAIN}, **ACTOR))
    captured: list[bytes] = []

    async def capture(msg: Msg) -> None:
        captured.append(msg.data)

    spy = await nc.subscribe("_INBOX.>", cb=capture)
    # When its pool asks
    assert await reveal(client, "acme", pool="default") == {"secret.k": PLAIN}
    await nc.flush()
    await spy.unsubscribe()
    # Then the reply on the wire carries no plaintext
    assert captured
    assert not any(PLAIN.encode() in data for data in captured)
    # And another pool, or a body whose tenant disagrees with its subject, gets nothing
    with pytest.raises(InvalidRequest, match="does not serve tenant acme"):
        await reveal(client, "acme", pool="other")
    key = OneTimeKey.new()
    forged = RevealSecrets(tenant_id="acme", pool="default", public_key=key.public, **ACTOR)
    other_subject = settings.subjects.secret_reveal("beta", "default")
    answer = await nc.request(other_subject, forged.model_dump_json().encode(), timeout=5)
    assert b"invalid_request" in answer.data
    assert PLAIN.encode() not in answer.data
    # And the reveal is in the audit, with who and which keys
    listed = await asyncio.to_thread(
        tenantctl, settings, "secrets", "audit", "--tenant", "acme", "-o", "json"
    )
    assert listed.returncode == 0, listed.stderr
    (record,) = orjson.loads(listed.stdout)
    assert record["pool"] == "default"
    assert record["keys"] == ["secret.k"]
    assert record["actor"] == ACTOR["actor"]
