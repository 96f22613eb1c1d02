"""The router end to end: commands, resolver push, and a gateway in front of two real
HTTP upstreams."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.commands import ErrorCode
from tenantplane.contracts.routing import (
    PinTenant,
    RegisterVersion,
    RetireVersion,
    Rollout,
    SetDefault,
    UnpinTenant,
)
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.router.gateway import build_gateway
from tenantplane.services.router.propagation import TenantMiddleware, current_tenant, routed_client
from tenantplane.services.router.rollback import table_at
from tenantplane.services.router.sdk import Resolver
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import (
    InvalidRequest,
    InvalidTransition,
    NoRoute,
    TenantNotFound,
)
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import ACTOR, tenantctl
from tests.support.running import eventually

pytestmark = pytest.mark.integration


def upstream(version: str) -> tuple[ThreadingHTTPServer, str]:
    """A real HTTP server that answers with its version and the tenant header it got."""

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"version": version, "tenant": self.headers.get("X-Tenant-ID"), "path": self.path}
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def upstreams() -> Iterator[dict[str, str]]:
    servers = {v: upstream(v) for v in ("v1", "v2")}
    yield {v: url for v, (_, url) in servers.items()}
    for server, _ in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture
async def billing(
    router: None, nc: NATS, redis: aioredis.Redis, settings: Settings, upstreams: dict[str, str]
) -> CommandClient:
    """billing v1 (default) and v2 registered; tenants acme and beta exist."""
    client = CommandClient(nc, settings.subjects)
    for tenant in ("acme", "beta"):
        await client.send(RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR))
    for version, url in upstreams.items():
        await client.send(RegisterVersion(target="billing", version=version, upstream=url, **ACTOR))
    last = await client.send(SetDefault(target="billing", version="v1", **ACTOR))
    assert last.seq is not None
    await wait_applied(nc, redis, settings.subjects, settings.keys, "router", last.seq)
    return client


@pytest.fixture
async def resolver(settings: Settings) -> AsyncIterator[Resolver]:
    resolver = await Resolver.connect(settings)
    yield resolver
    await resolver.close()


async def wait_router(
    client: CommandClient, redis: aioredis.Redis, settings: Settings, command: Any
) -> None:
    reply = await client.send(command)
    if reply.seq is not None:
        await wait_applied(client.nc, redis, settings.subjects, settings.keys, "router", reply.seq)


async def test_gateway_routes_pins_default_and_a_sticky_rollout(
    billing: CommandClient, resolver: Resolver, redis: aioredis.Redis, settings: Settings
) -> None:
    gateway = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_gateway(resolver)), base_url="http://gw"
    )

    async def version_of(tenant: str) -> str:
        response = await gateway.get("/billing/invoices?x=1", headers={"X-Tenant-ID": tenant})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["tenant"] == tenant
        assert body["path"] == "/invoices?x=1"
        assert response.headers["x-tenantplane-version"] == body["version"]
        return str(body["version"])

    # Given acme pinned to v2
    await wait_router(
        billing,
        redis,
        settings,
        PinTenant(target="billing", tenant_id="acme", version="v2", **ACTOR),
    )
    # Then acme reaches v2 and beta the default v1
    assert await version_of("acme") == "v2"
    assert await version_of("beta") == "v1"
    # When v2 rolls out to 50%, then 70%
    tenants = [f"t{i}" for i in range(1000)]

    limit = asyncio.Semaphore(50)

    async def bounded(tenant: str) -> str:
        async with limit:
            return await version_of(tenant)

    async def on_v2() -> set[str]:
        versions = await asyncio.gather(*(bounded(t) for t in tenants))
        return {t for t, v in zip(tenants, versions, strict=True) if v == "v2"}

    await wait_router(
        billing, redis, settings, Rollout(target="billing", version="v2", percent=50, **ACTOR)
    )
    at_50 = await on_v2()
    await wait_router(
        billing, redis, settings, Rollout(target="billing", version="v2", percent=70, **ACTOR)
    )
    at_70 = await on_v2()
    # Then about half land on v2, and raising the percentage only adds tenants
    assert 430 <= len(at_50) <= 570
    assert at_50 < at_70
    missing = await gateway.get("/billing/x")
    assert missing.status_code == 400
    await gateway.aclose()


async def test_a_downstream_call_inside_a_handler_carries_the_tenant_and_its_version(
    billing: CommandClient, resolver: Resolver, redis: aioredis.Redis, settings: Settings
) -> None:
    await wait_router(
        billing,
        redis,
        settings,
        PinTenant(target="billing", tenant_id="acme", version="v2", **ACTOR),
    )
    downstream = routed_client(resolver)

    async def orders(scope: Any, receive: Any, send: Any) -> None:
        # A service's handler: it calls billing without mentioning the tenant.
        answer = (await downstream.get("service://billing/whoami")).content
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})

    app = TenantMiddleware(orders)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://orders"
    ) as http:
        acme = (await http.get("/", headers={"X-Tenant-ID": "acme"})).json()
        beta = (await http.get("/", headers={"X-Tenant-ID": "beta"})).json()
        bad = await http.get("/", headers={"X-Tenant-ID": "../etc"})
    assert (acme["tenant"], acme["version"]) == ("acme", "v2")
    assert (beta["tenant"], beta["version"]) == ("beta", "v1")
    assert bad.status_code == 400
    assert current_tenant.get() is None
    await downstream.aclose()


async def test_changes_reach_a_resolver_by_push_and_survive_its_restart(
    billing: CommandClient, resolver: Resolver, settings: Settings
) -> None:
    assert (await resolver.resolve("billing", "acme")).version == "v1"
    await billing.send(PinTenant(target="billing", tenant_id="acme", version="v2", **ACTOR))

    async def pushed() -> bool:
        table = resolver.cache.cached("billing")
        return table is not None and table.resolve("acme").version == "v2"

    await eventually(pushed, timeout=2)
    restarted = await Resolver.connect(settings)
    try:
        assert await restarted.warm_up() == 1
        assert restarted.cache.cached("billing") is not None
        assert (await restarted.resolve("billing", "acme")).via == "pin"
    finally:
        await restarted.close()


async def test_routing_commands_refuse_what_cannot_be_done(
    billing: CommandClient, settings: Settings
) -> None:
    with pytest.raises(InvalidRequest, match=r"no live version v9 \(live: v1, v2\)"):
        await billing.send(PinTenant(target="billing", tenant_id="acme", version="v9", **ACTOR))
    with pytest.raises(TenantNotFound, match="no tenant ghost"):
        await billing.send(PinTenant(target="billing", tenant_id="ghost", version="v2", **ACTOR))
    for tenant in ("acme", "beta"):
        await billing.send(PinTenant(target="billing", tenant_id=tenant, version="v2", **ACTOR))
    with pytest.raises(InvalidTransition, match="2 tenants are pinned to it"):
        await billing.send(RetireVersion(target="billing", version="v2", **ACTOR))
    with pytest.raises(InvalidTransition, match="it is the default"):
        await billing.send(RetireVersion(target="billing", version="v1", **ACTOR))
    refused = await asyncio.to_thread(tenantctl, settings, "route", "retire", "billing", "v2")
    assert refused.returncode == 1
    assert "2 tenants are pinned" in refused.stderr


async def test_cli_shows_how_many_tenants_land_on_each_version(
    billing: CommandClient, settings: Settings
) -> None:
    await billing.send(PinTenant(target="billing", tenant_id="acme", version="v2", **ACTOR))
    shown = await asyncio.to_thread(tenantctl, settings, "route", "show", "billing", "-o", "json")
    rows = {r["version"]: r for r in json.loads(shown.stdout)}
    assert (rows["v1"]["tenants"], rows["v1"]["role"]) == (1, "default")
    assert (rows["v2"]["tenants"], rows["v2"]["pinned"]) == (1, 1)
    resolved = await asyncio.to_thread(
        tenantctl, settings, "route", "resolve", "billing", "acme", "-o", "json"
    )
    assert json.loads(resolved.stdout)["via"] == "pin"


async def test_a_tenant_with_no_route_gets_no_route_from_the_sdk_and_the_cli(
    resolver: Resolver, settings: Settings
) -> None:
    # Given a service with no version, pin, rollout or default
    # When a tenant is resolved against it
    with pytest.raises(NoRoute, match="no pin, rollout or default") as raised:
        await resolver.resolve("search", "acme")
    resolved = await asyncio.to_thread(tenantctl, settings, "route", "resolve", "search", "acme")
    # Then both say no_route, and the CLI refuses (exit 1) rather than failing
    assert raised.value.code is ErrorCode.NO_ROUTE
    assert resolved.returncode == 1
    assert resolved.stderr.strip() == (
        "error: no_route: no route to search for acme: no pin, rollout or default"
    )


async def test_rollback_puts_routing_back_and_the_history_says_who_and_why(
    billing: CommandClient, settings: Settings, event_log: EventLog
) -> None:
    # Given a good routing (v1 default, acme pinned to v2), then changes after it
    await billing.send(PinTenant(target="billing", tenant_id="acme", version="v2", **ACTOR))
    good = await table_at(event_log, "billing")
    for command in (
        SetDefault(target="billing", version="v2", **ACTOR),
        Rollout(target="billing", version="v1", percent=30, **ACTOR),
        PinTenant(target="billing", tenant_id="beta", version="v1", **ACTOR),
        UnpinTenant(target="billing", tenant_id="acme", **ACTOR),
    ):
        await billing.send(command)

    async def rollback(*extra: str) -> list[dict[str, Any]]:
        done = await asyncio.to_thread(
            tenantctl, settings, "route", "rollback", "billing", "--to", str(good.version),
            "-r", "v2 errors", "-o", "json", *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows

    # When a dry run shows the steps, nothing changes
    dry = await rollback("--dry-run")
    assert [(r["step"], r.get("tenant_id")) for r in dry] == [
        ("default.set", None), ("rollout.set", None),
        ("tenant.pin", "acme"), ("tenant.unpin", "beta"),
    ]  # fmt: skip
    assert (await table_at(event_log, "billing")).default == "v2"
    # When it is rolled back
    await rollback()
    # Then default, rollout and pins are as they were, and a second rollback does nothing
    now = await table_at(event_log, "billing")
    assert (now.default, now.rollout, dict(now.pins)) == (good.default, None, {"acme": "v2"})
    assert await rollback() == []
    # And the history lists each step with who and why
    shown = await asyncio.to_thread(
        tenantctl, settings, "route", "history", "billing", "-o", "json"
    )
    history = json.loads(shown.stdout)
    steps = [h for h in history if h["reason"] == f"rollback to {good.version}: v2 errors"]
    assert [h["event"] for h in steps] == [
        "route.default_set", "route.rollout_set", "route.tenant_pinned", "route.tenant_unpinned",
    ]  # fmt: skip
    assert {h["actor"] for h in steps} == {"cli@test"}
