"""What every service process sets up: one NATS connection (FastStream broker and
nats-py on the same socket), the streams, Redis, its projectors, and an orderly stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
import structlog
from faststream.nats import NatsBroker
from faststream.security import BaseSecurity, SASLPlaintext
from nats.aio.client import Client as NATS

from tenantplane.contracts import EVENTS
from tenantplane.contracts.keys import Keys
from tenantplane.services.runtime.connections import connect_redis, nats_options
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.leadership import Lease, ensure_leader_stream
from tenantplane.services.runtime.metrics import LIVE, Source
from tenantplane.services.runtime.ops import Check, announced, nats_connected, redis_answers
from tenantplane.services.runtime.projector import Projection, Projector
from tenantplane.services.runtime.rebuild import RedisRebuild
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.base import ProjectionStore
from tenantplane.services.runtime.stores.redis import RedisStore
from tenantplane.services.runtime.stores.redis_ops import RedisOp
from tenantplane.services.runtime.supervisor import Backoff, LoopBody, Supervisor

OpT = TypeVar("OpT")

log = structlog.get_logger(__name__)


def build_broker(settings: Settings, name: str) -> NatsBroker:
    """A FastStream broker on the settings' NATS, quiet per message.

    FastStream takes user/password and TLS as a security object rather than as
    nats-py's keyword arguments; everything else passes through.
    """
    options = nats_options(settings, f"tenantplane-{name}")
    tls, user, password = (
        options.pop("tls", None),
        options.pop("user", None),
        options.pop("password", None),
    )
    security: BaseSecurity | None = None
    if user is not None:
        security = SASLPlaintext(user, password or "", ssl_context=tls)
    elif tls is not None:
        security = BaseSecurity(ssl_context=tls)
    # Handlers take the raw body and parse it themselves: no per-message dependency
    # injection (it measured a fifth of the command path).
    return NatsBroker(
        options.pop("servers"), logger=None, apply_types=False, security=security, **options
    )


async def ensure_streams(event_log: EventLog, settings: Settings) -> None:
    """Create or update the streams as the settings say."""
    await event_log.ensure_streams(
        replicas=settings.replicas,
        duplicate_window_s=settings.duplicate_window_s,
        jobs_max_age_s=settings.jobs_retention_days * 86_400,
        jobs_max_bytes=settings.jobs_max_bytes,
    )


@dataclass
class ServiceRuntime:
    """The connections of one service process."""

    name: str
    settings: Settings
    broker: NatsBroker
    nc: NATS
    log: EventLog
    redis: aioredis.Redis
    projectors: list[Projector[Any]] = field(default_factory=list)
    # Readiness checks and live metrics of the service, beside those of its projectors.
    checks: dict[str, Check] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    # The service's own long-running loops, run under the supervisor by `serve`.
    loops: dict[str, LoopBody] = field(default_factory=dict)
    supervisor: Supervisor | None = None

    def project(self, make: Callable[[Keys], tuple[Projection[RedisOp], list[str]]]) -> None:
        """Run a Redis projection in this process; `make` builds it for any key root.

        A lost read model (Redis flushed, or restored from an older snapshot) is
        rebuilt beside the live keys and swapped in, as `tenantctl projection
        rebuild` does.
        """
        keys = self.settings.keys
        projection, owns = make(keys)
        store = RedisStore(self.redis, keys, projection.name, owns)
        rebuild = RedisRebuild(make, self.nc, self.redis, self.log, keys, EVENTS)
        self.project_into(store, projection, heal=rebuild.run)

    def supervise(self, name: str, body: LoopBody) -> None:
        """Run a loop of this service under the supervisor (restarted when it fails)."""
        self.loops[name] = body

    def details(self) -> dict[str, Any]:
        """What `tenantctl status` shows of this service beyond readiness."""
        return {
            "projections": {
                p.name: {"checkpoint": p.position.checkpoint, "lag": p.stats.pending}
                for p in self.projectors
            },
            "loops": self.supervisor.details() if self.supervisor is not None else {},
        }

    def project_into(
        self,
        store: ProjectionStore[OpT],
        projection: Projection[OpT],
        heal: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Run a projection into any store in this process."""
        settings = self.settings
        projector = Projector(
            projection, store, self.nc, subjects=settings.subjects, registry=EVENTS,
            store_check_s=settings.projection_store_check_s, heal=heal,
            lease=Lease(
                self.nc.jetstream(), settings.subjects, projection.name, settings.replicas
            ),
        )  # fmt: skip
        self.projectors.append(projector)


@contextlib.asynccontextmanager
async def service_runtime(settings: Settings, name: str) -> AsyncIterator[ServiceRuntime]:
    """Connect; yield to register handlers and projections; serve until the block ends."""
    broker = build_broker(settings, name)
    await broker.connect()
    nc = broker.connection
    event_log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
    await ensure_streams(event_log, settings)
    await ensure_leader_stream(nc.jetstream(), settings.subjects, replicas=settings.replicas)
    runtime = ServiceRuntime(name, settings, broker, nc, event_log, connect_redis(settings))
    try:
        yield runtime
    finally:
        await runtime.redis.aclose()
        await broker.stop()


def supervisor_for(settings: Settings, stop: asyncio.Event) -> Supervisor:
    """A supervisor restarting loops with the settings' backoff."""
    return Supervisor(stop, Backoff(settings.loop_backoff_first_s, settings.loop_backoff_max_s))


async def serve(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Start the broker's handlers, the projectors and the loops; run until `stop` is set.

    With `serve_only`, the process runs one part: `commands` (handlers and loops) or
    `projections` (projectors); another process runs the other.
    """
    only = runtime.settings.serve_only
    if only == "commands":
        runtime.projectors.clear()
    if only != "projections":
        await runtime.broker.start()
    supervisor = runtime.supervisor = supervisor_for(runtime.settings, stop)
    for projector in runtime.projectors:
        supervisor.start(f"projector.{projector.name}", projector.run)
    for name, body in runtime.loops.items() if only != "projections" else ():
        supervisor.start(name, body)
    checks: dict[str, Check] = {
        "nats": nats_connected(runtime.nc),
        "redis": redis_answers(runtime.redis),
        "loops": supervisor.readiness,
        **{
            f"projection.{p.name}": p.readiness(runtime.settings.ready_max_lag)
            for p in runtime.projectors
        },
        **runtime.checks,
    }
    sources = [*runtime.sources, supervisor.samples, *(p.samples for p in runtime.projectors)]
    unregister = [LIVE.add(source) for source in sources]
    log.info(f"{runtime.name}.started", namespace=runtime.settings.namespace)
    try:
        async with announced(
            runtime.nc, runtime.settings.subjects, runtime.name, checks, runtime.details
        ):
            await stop.wait()
    finally:
        for remove in unregister:
            remove()
        stop.set()
        await supervisor.wait()
        log.info(f"{runtime.name}.stopped")
