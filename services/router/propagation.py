"""Carrying the tenant across HTTP calls: an ASGI middleware in, an httpx hook out.

    app = TenantMiddleware(app)                       # tenant header -> current_tenant
    client = routed_client(resolver)                  # current_tenant -> header, and
    await client.get("service://billing/invoices")    # service://<name>/ -> its upstream

`service://<name>/...` URLs are resolved for the current tenant; a call to a
service with no route fails (`NoRoute`) instead of going to "any instance".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

import httpx

from tenantplane.contracts.errors import InvalidTenantId
from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.services.router.sdk import Resolver

DEFAULT_HEADER = "X-Tenant-ID"
SERVICE_SCHEME = "service"

current_tenant: ContextVar[str | None] = ContextVar("current_tenant", default=None)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TenantMiddleware:
    """Takes the tenant from a request header into `current_tenant` for the request.

    A missing header is a 400 when `required`; a malformed tenant id always is.
    """

    def __init__(self, app: ASGIApp, header: str = DEFAULT_HEADER, required: bool = True) -> None:
        self.app = app
        self.header = header.lower().encode()
        self.required = required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers", [])).get(self.header)
        if raw is None and self.required:
            await respond_error(send, f"missing {self.header.decode()} header")
            return
        try:
            tenant = validate_tenant_id(raw.decode()) if raw is not None else None
        except InvalidTenantId as e:
            await respond_error(send, str(e))
            return
        token = current_tenant.set(tenant)
        try:
            await self.app(scope, receive, send)
        finally:
            current_tenant.reset(token)


async def respond_error(send: Send, message: str, status: int = 400) -> None:
    """Answer a request with a JSON error."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def routed_client(
    resolver: Resolver, header: str = DEFAULT_HEADER, **options: Any
) -> httpx.AsyncClient:
    """An httpx client that carries the current tenant and resolves `service://` URLs."""

    async def route(request: httpx.Request) -> None:
        tenant = current_tenant.get()
        if tenant is not None:
            request.headers[header] = tenant
        if request.url.scheme != SERVICE_SCHEME:
            return
        if tenant is None:
            raise ValueError(f"{request.url}: no current tenant to route for")
        found = await resolver.resolve(request.url.host, tenant)
        base = httpx.URL(found.upstream)
        request.url = base.copy_with(
            path=base.path.rstrip("/") + request.url.path, query=request.url.query or None
        )
        request.headers["host"] = base.netloc.decode()
        request.extensions["tenantplane_route"] = found

    hooks = options.pop("event_hooks", {})
    hooks = {**hooks, "request": [route, *hooks.get("request", [])]}
    return httpx.AsyncClient(event_hooks=hooks, **options)
