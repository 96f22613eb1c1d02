"""A tenant's job limits: one typed object read from its config.

Every `jobs.*` key the scheduler uses is declared in the config schema
(`services/config/schema.py`), with its default there and nowhere else; a
tenant whose config is not at hand yet is limited by those defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantplane.services.config.schema import DEFAULT_SCHEMA
from tenantplane.services.config.sdk import TenantConfig
from tenantplane.services.runtime.errors import InvalidConfigValue

POOL_KEY = "jobs.pool"


def pool_of(values: Mapping[str, Any], default_pool: str) -> str:
    """The pool serving a tenant with config `values`: its own, else the default."""
    return str(values.get(POOL_KEY) or default_pool)


@dataclass(frozen=True)
class JobLimits:
    """What a tenant may run: in flight at once, started per minute, its share of a pool."""

    max_concurrency: int
    rate_per_minute: int
    weight: float

    @classmethod
    def of(cls, config: TenantConfig | None) -> JobLimits:
        """The limits `config` sets (the schema's defaults for what it does not)."""
        if config is None:
            return DEFAULT_LIMITS
        try:
            return cls(
                max_concurrency=config.get_int("jobs.max_concurrency"),
                rate_per_minute=config.get_int("jobs.rate_per_minute"),
                weight=config.get_float("jobs.weight"),
            )
        except (KeyError, InvalidConfigValue):
            # Written before the schema declared the key, or under another schema: a
            # tenant's jobs still run, within the defaults.
            return DEFAULT_LIMITS


DEFAULT_LIMITS = JobLimits.of(
    TenantConfig("", "active", "", 0, {}, defaults=DEFAULT_SCHEMA.defaults())
)
