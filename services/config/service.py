"""The config service process: command handlers and the Redis projector."""

from __future__ import annotations

import asyncio

import structlog
from faststream.nats import NatsBroker

from contracts import EVENTS
from contracts.commands import TenantCommand
from contracts.config import COMMANDS as CONFIG_COMMANDS
from contracts.subjects import Subjects
from contracts.tenants import COMMANDS as TENANT_COMMANDS
from services.config.projection import ConfigProjection
from services.config.schema import ConfigSchema
from services.config.secrets import SecretBox
from services.config.writes import TenantWrites
from services.runtime.commands import Handler, register
from services.runtime.connections import connect_redis, nats_options
from services.runtime.database import create_engine, migrate
from services.runtime.eventlog import EventLog
from services.runtime.localstate import resolve_database_url
from services.runtime.projector import Projector
from services.runtime.settings import Settings
from services.runtime.stores.redis import RedisOp, RedisStore

log = structlog.get_logger(__name__)


def build_broker(settings: Settings) -> NatsBroker:
    """A FastStream broker on the settings' NATS, quiet per message."""
    options = nats_options(settings, "tenantplane-config")
    return NatsBroker(options.pop("servers"), logger=None, **options)


COMMANDS = (*TENANT_COMMANDS, *CONFIG_COMMANDS)


def serve_commands(broker: NatsBroker, subjects: Subjects, handle: Handler[TenantCommand]) -> None:
    """Register every command of the config service on `broker`."""
    for command_cls in COMMANDS:
        register(broker, subjects, command_cls, handle)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve tenant and config commands and project into Redis until `stop` is set."""
    broker = build_broker(settings)
    await broker.connect()
    nc = broker.connection
    event_log = EventLog(nc.jetstream(), settings.subjects, EVENTS)
    await event_log.ensure_streams(
        replicas=settings.replicas, duplicate_window_s=settings.duplicate_window_s
    )
    engine = create_engine(resolve_database_url(settings))
    await migrate(engine)
    box = SecretBox(engine, settings.namespace, keys) if (keys := settings.master_keys()) else None
    writes = TenantWrites(event_log, ConfigSchema.load(settings.config_schema_file), box)
    serve_commands(broker, settings.subjects, writes.handle)
    redis = connect_redis(settings)
    projection = ConfigProjection(settings.subjects, settings.keys)
    projector: Projector[RedisOp] = Projector(
        projection,
        RedisStore(redis, settings.keys, projection.name, projection.owned_patterns()),
        nc,
        subjects=settings.subjects,
        registry=EVENTS,
    )
    await broker.start()
    task = asyncio.create_task(projector.run())
    log.info("config.started", namespace=settings.namespace)
    try:
        await stop.wait()
    finally:
        await projector.stop()
        await task
        await broker.stop()
        await redis.aclose()
        await engine.dispose()
        log.info("config.stopped")
