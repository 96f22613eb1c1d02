"""Every service `tenantctl dev up` runs, by name."""

from __future__ import annotations

from services.config import service as config_service
from services.router import service as router_service
from services.runtime.services import Service

SERVICES: list[tuple[str, Service]] = [
    ("config", config_service.run),
    ("router", router_service.run),
]
