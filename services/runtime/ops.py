"""What operators and orchestrators see of a process.

- An HTTP endpoint: `/healthz` (the process answers), `/readyz` (every service
  in it is connected and caught up within a bound; 503 with the reasons
  otherwise) and `/metrics` (Prometheus text format).
- A status reply on NATS: every service answers `<root>.ctl.services.status`,
  so `tenantctl status` finds all instances of every service, wherever they run,
  without knowing their addresses.

Readiness checks are registered per service on a process-wide `Health`, the
way metrics are registered on the process's Prometheus registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.errors import Unavailable

log = structlog.get_logger(__name__)

# A readiness check: None when ready, else why not.
Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT_S = 2.0


class Health:
    """The readiness checks of the services running in this process."""

    def __init__(self) -> None:
        self._checks: dict[tuple[str, str], Check] = {}

    def add(self, service: str, name: str, check: Check) -> Callable[[], None]:
        """Register a check of `service`; returns the function that removes it."""
        key = (service, name)
        self._checks[key] = check
        return lambda: self._checks.pop(key, None) and None

    def services(self) -> list[str]:
        """Services with checks in this process."""
        return sorted({service for service, _ in self._checks})

    async def problems(self, service: str | None = None) -> dict[str, str]:
        """`service.check -> reason` for every failing check (of one service, or all)."""
        keys = [k for k in self._checks if service is None or k[0] == service]
        reasons = await asyncio.gather(*(self._run(self._checks[k]) for k in keys))
        return {f"{s}.{n}": r for (s, n), r in zip(keys, reasons, strict=True) if r is not None}

    @staticmethod
    async def _run(check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_S:g}s"
        except Exception as e:
            return f"{type(e).__name__}: {e}"


HEALTH = Health()


def ops_app(health: Health) -> Callable[..., Awaitable[None]]:
    """The ASGI application serving /healthz, /readyz and /metrics."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            status, body, ctype = 200, b"ok\n", b"text/plain"
        elif path == "/readyz":
            problems = await health.problems()
            status = 503 if problems else 200
            report = {"ready": not problems, "services": health.services(), "problems": problems}
            body, ctype = orjson.dumps(report), b"application/json"
        elif path == "/metrics":
            status, body, ctype = 200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST.encode()
        else:
            status, body, ctype = 404, b"try /healthz, /readyz or /metrics\n", b"text/plain"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class OpsPortInUse(Unavailable):
    """The operations endpoint's port is taken."""


def _http_server(health: Health) -> Any:
    """uvicorn serving `ops_app`, inside a process that handles its own signals.

    Imported here: only processes that serve the endpoint load the HTTP server.
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    config = uvicorn.Config(
        ops_app(health), lifespan="off", log_config=None, access_log=False, log_level="warning"
    )
    return Server(config)


@contextlib.asynccontextmanager
async def ops_server(host: str, port: int, health: Health = HEALTH) -> AsyncIterator[str]:
    """Serve the operations endpoint on host:port (0: any free port); yields its URL."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OpsPortInUse(
            f"cannot serve /metrics on {host}:{port} ({e.strerror}); "
            "set TENANTPLANE_OPS_PORT to a free port, or 0 for any"
        ) from e
    bound = sock.getsockname()[1]
    server = _http_server(health)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has only a flag
        await asyncio.sleep(0.01)
    url = f"http://{host}:{bound}"
    log.info("ops.listening", url=url)
    try:
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Announcement:
    """What a running service tells `tenantctl status` about itself."""

    service: str
    started_at: float
    details: Callable[[], Mapping[str, Any]]

    async def reply(self, health: Health) -> dict[str, Any]:
        """This service's status record."""
        problems = await health.problems(self.service)
        return {
            "service": self.service,
            "instance": f"{socket.gethostname()}:{os.getpid()}",
            "ready": not problems,
            "problems": problems,
            "uptime_s": round(time.time() - self.started_at, 1),
            **self.details(),
        }


@contextlib.asynccontextmanager
async def announced(
    nc: NATS,
    subjects: Subjects,
    service: str,
    checks: Mapping[str, Check],
    details: Callable[[], Mapping[str, Any]] = dict,
    health: Health = HEALTH,
) -> AsyncIterator[None]:
    """Register `service`'s readiness checks and answer status requests while in the block."""
    removers = [health.add(service, name, check) for name, check in checks.items()]
    announcement = Announcement(service, time.time(), details)

    async def on_request(msg: Msg) -> None:
        await msg.respond(orjson.dumps(await announcement.reply(health)))

    sub = await nc.subscribe(subjects.service_status(), cb=on_request)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        for remove in removers:
            remove()


async def gather_status(
    nc: NATS, subjects: Subjects, window_s: float = 0.5
) -> list[dict[str, Any]]:
    """Every running service's status record (those that answer within `window_s`)."""
    inbox = nc.new_inbox()
    replies: list[dict[str, Any]] = []

    async def on_reply(msg: Msg) -> None:
        replies.append(orjson.loads(msg.data))

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(subjects.service_status(), b"", reply=inbox)
        await asyncio.sleep(window_s)
    finally:
        await sub.unsubscribe()
    return sorted(replies, key=lambda r: (r["service"], r["instance"]))


def nats_connected(nc: NATS) -> Check:
    """Ready while the NATS connection is up."""

    async def check() -> str | None:
        return None if nc.is_connected else "NATS connection is down"

    return check


def redis_answers(redis: Any) -> Check:
    """Ready while Redis answers a PING."""

    async def check() -> str | None:
        await redis.ping()
        return None

    return check
