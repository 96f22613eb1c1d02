"""The router service process: routing commands and the routing projector."""

from __future__ import annotations

import asyncio

from faststream.nats import NatsBroker

from tenantplane.contracts.routing import COMMANDS, ServiceCommand
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.projections import PROJECTIONS
from tenantplane.services.router.writes import RouteWrites
from tenantplane.services.runtime.app import serve, service_runtime
from tenantplane.services.runtime.handlers import Handler, register
from tenantplane.services.runtime.settings import Settings


def serve_commands(broker: NatsBroker, subjects: Subjects, handle: Handler[ServiceCommand]) -> None:
    """Register every routing command on `broker`."""
    for command_cls in COMMANDS:
        register(broker, subjects, command_cls, handle)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve routing commands and project routing tables into Redis until `stop` is set."""
    async with service_runtime(settings, "router") as runtime:
        serve_commands(runtime.broker, settings.subjects, RouteWrites(runtime.log).handle)
        runtime.project(PROJECTIONS["router"].maker(settings.subjects))
        await serve(runtime, stop)
