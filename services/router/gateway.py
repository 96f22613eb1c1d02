"""An example gateway: `/<service>/<path>` forwarded to the version the tenant resolves to.

    uvicorn: tenantctl route gateway --port 8080
    curl -H 'X-Tenant-ID: acme' localhost:8080/billing/invoices

The response carries `X-Tenantplane-Version` (and `-Via`: pin, rollout or
default). A tenant with no route gets 502 and the reason, never a random upstream.
"""

from __future__ import annotations

import httpx

from tenantplane.services.router.propagation import (
    DEFAULT_HEADER,
    Receive,
    Scope,
    Send,
    TenantMiddleware,
    respond_error,
    routed_client,
)
from tenantplane.services.router.sdk import Resolver
from tenantplane.services.runtime.errors import NoRoute

_HOP_BY_HOP = {b"host", b"connection", b"content-length", b"transfer-encoding", b"keep-alive"}


class Gateway:
    """The forwarding app (wrap it in `TenantMiddleware`; `build_gateway` does)."""

    def __init__(self, resolver: Resolver, client: httpx.AsyncClient) -> None:
        self.resolver = resolver
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        service, _, rest = scope["path"].lstrip("/").partition("/")
        if not service:
            await respond_error(send, "path must start with /<service>/", 404)
            return
        body = await _read_body(receive)
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _HOP_BY_HOP]
        url = f"service://{service}/{rest}"
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode()
        try:
            response = await self.client.request(
                scope["method"], url, headers=headers, content=body
            )
        except NoRoute as e:
            await respond_error(send, e.message, 502)
            return
        except httpx.HTTPError as e:
            await respond_error(send, f"{service} upstream failed: {type(e).__name__}: {e}", 502)
            return
        await _forward(send, response)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _forward(send: Send, response: httpx.Response) -> None:
    route = response.request.extensions.get("tenantplane_route")
    headers = [
        (k.encode(), v.encode())
        for k, v in response.headers.items()
        if k.encode().lower() not in _HOP_BY_HOP
    ]
    if route is not None:
        headers += [(b"x-tenantplane-version", route.version.encode()),
                    (b"x-tenantplane-via", route.via.encode())]  # fmt: skip
    body = response.content
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def build_gateway(resolver: Resolver, header: str = DEFAULT_HEADER) -> TenantMiddleware:
    """The gateway app with tenant propagation, ready for any ASGI server."""
    client = routed_client(resolver, header, timeout=10.0)
    return TenantMiddleware(Gateway(resolver, client), header=header, required=True)
