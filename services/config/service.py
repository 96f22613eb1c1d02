"""The config service process: command handlers and the Redis projector."""

from __future__ import annotations

import asyncio

from faststream.nats import NatsBroker

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.config import COMMANDS as CONFIG_COMMANDS
from tenantplane.contracts.config import ShowSealingKey
from tenantplane.contracts.discards import DiscardEvent
from tenantplane.contracts.rollouts import COMMANDS as ROLLOUT_COMMANDS
from tenantplane.contracts.subjects import Subjects
from tenantplane.contracts.tenants import COMMANDS as TENANT_COMMANDS
from tenantplane.services.config.rollout_writes import RolloutWrites
from tenantplane.services.config.schema import DEFAULT_SCHEMA, ConfigSchema
from tenantplane.services.config.secrets import SecretBox
from tenantplane.services.config.writes import TenantWrites
from tenantplane.services.projections import PROJECTIONS
from tenantplane.services.runtime.app import serve, service_runtime
from tenantplane.services.runtime.database import migrated_database
from tenantplane.services.runtime.discarding import EventDiscarding
from tenantplane.services.runtime.handlers import Handler, register
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.security.audit import RevealAudit

COMMANDS = (*TENANT_COMMANDS, *CONFIG_COMMANDS)


def serve_commands(
    broker: NatsBroker,
    subjects: Subjects,
    handle: Handler[TenantCommand],
    schema: ConfigSchema = DEFAULT_SCHEMA,
) -> None:
    """Register every command of the config service on `broker`; the secret values of
    `schema` are kept out of its logs and error texts."""
    for command_cls in COMMANDS:
        register(broker, subjects, command_cls, handle, secrets=schema.secrets_of)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve tenant and config commands and project into Redis until `stop` is set."""
    async with migrated_database(settings) as engine:
        keys = settings.master_keys()
        box = SecretBox(engine, settings.namespace, keys) if keys else None
        async with service_runtime(settings, "config") as runtime:
            schema = ConfigSchema.load(settings.config_schema_file)
            audit = RevealAudit(runtime.log.js, settings.subjects)
            await runtime.log.ensure_stream(audit.stream_config(settings.replicas))
            writes = TenantWrites(
                runtime.log, schema, box, audit=audit, default_pool=settings.default_pool
            )
            serve_commands(runtime.broker, settings.subjects, writes.handle, schema)
            register(
                runtime.broker,
                settings.subjects,
                DiscardEvent,
                EventDiscarding(runtime.log).handle,
            )
            register(runtime.broker, settings.subjects, ShowSealingKey, writes.sealing_key)
            rollouts = RolloutWrites(writes, schema)
            for rollout_cls in ROLLOUT_COMMANDS:
                register(runtime.broker, settings.subjects, rollout_cls, rollouts.handle)
            runtime.project(PROJECTIONS["config"].maker(settings.subjects))
            await serve(runtime, stop)
