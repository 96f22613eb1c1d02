"""Admission: whether a tenant's job may be taken in, to which pool, and whether it
may start now. Pure functions of the tenant's config and the pools' state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenantplane.contracts.tenants import TenantStatus
from tenantplane.services.config.sdk import TenantConfig
from tenantplane.services.jobs.limits import JobLimits, pool_of


@dataclass(frozen=True)
class Admission:
    """A job admitted to `pool`, or refused for `refusal`."""

    pool: str = ""
    refusal: str | None = None


def admit(
    tenant_id: str, config: TenantConfig | None, default_pool: str, capacity: Callable[[str], int]
) -> Admission:
    """Admit a job of a tenant with `config` (None: no such tenant)."""
    if config is None:
        return Admission(refusal=f"tenant {tenant_id} does not exist")
    if config.status != TenantStatus.ACTIVE.value:
        return Admission(refusal=f"tenant {tenant_id} is {config.status}")
    pool = pool_of(config, default_pool)
    if capacity(pool) == 0:
        return Admission(refusal=f"tenant {tenant_id}'s pool {pool!r} does not exist")
    return Admission(pool=pool)


def may_start(config: TenantConfig | None, limits: JobLimits, in_flight: int) -> bool:
    """Whether a tenant may start one more job now, its rate aside: active (or not
    known to be otherwise) and under its concurrency."""
    if config is not None and config.status != TenantStatus.ACTIVE.value:
        return False
    return in_flight < limits.max_concurrency
