"""Every service `tenantctl dev up` runs, by name."""

from __future__ import annotations

import asyncio

from tenantplane.services.config import service as config_service
from tenantplane.services.pools import service as pools_service
from tenantplane.services.router import service as router_service
from tenantplane.services.runtime.services import Service
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.scheduler import service as scheduler_service
from tenantplane.services.worker.examples import KINDS
from tenantplane.services.worker.pool import run_pool


async def _default_pool(settings: Settings, stop: asyncio.Event) -> None:
    await run_pool(settings, stop, settings.default_pool, KINDS)


SERVICES: list[tuple[str, Service]] = [
    ("config", config_service.run),
    ("router", router_service.run),
    ("scheduler", scheduler_service.run),
    ("worker", _default_pool),
    ("pools", pools_service.run_local),
]


def role_of(name: str, settings: Settings) -> str:
    """The NATS user (role, see services/security/roles.py) service `name` connects as."""
    roles = {"worker": f"pool-{settings.default_pool}", "pools": "reconciler"}
    return roles.get(name, name)
