"""Every service `tenantctl dev up` runs, by name."""

from __future__ import annotations

import asyncio

from services.config import service as config_service
from services.pools import service as pools_service
from services.router import service as router_service
from services.runtime.services import Service
from services.runtime.settings import Settings
from services.scheduler import service as scheduler_service
from services.worker.examples import KINDS
from services.worker.pool import run_pool


async def _default_pool(settings: Settings, stop: asyncio.Event) -> None:
    await run_pool(settings, stop, settings.default_pool, KINDS)


SERVICES: list[tuple[str, Service]] = [
    ("config", config_service.run),
    ("router", router_service.run),
    ("scheduler", scheduler_service.run),
    ("worker", _default_pool),
    ("pools", pools_service.run_local),
]
