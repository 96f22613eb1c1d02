"""Admission: whether a tenant's job may be taken in, to which pool, and whether it
may start now. Pure functions of the tenant's config and the pools' state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tenantplane.contracts.tenants import TenantStatus
from tenantplane.services.config.sdk import TenantConfig
from tenantplane.services.jobs.limits import JobLimits, pool_of


@dataclass(frozen=True)
class PoolCapacity:
    """How many jobs each pool may have in flight: the installation's pools by name,
    and `dedicated` for any other (a tenant's dedicated pool; 0: none are taken)."""

    configured: Mapping[str, int]
    dedicated: int = 0

    def of(self, pool: str) -> int:
        """The capacity of `pool`."""
        return self.configured.get(pool, self.dedicated)


@dataclass(frozen=True)
class Admission:
    """A job admitted to `pool`, or refused for `refusal`."""

    pool: str = ""
    refusal: str | None = None


def admit(
    tenant_id: str,
    kind: str,
    config: TenantConfig | None,
    default_pool: str,
    capacity: Callable[[str], int],
    served: Callable[[str], frozenset[str] | None] = lambda _: None,
) -> Admission:
    """Admit a job of `kind` of a tenant with `config` (None: no such tenant);
    `served(pool)` is the kinds a pool's live workers run (None: not known)."""
    if config is None:
        return Admission(refusal=f"tenant {tenant_id} does not exist")
    if config.status != TenantStatus.ACTIVE.value:
        return Admission(refusal=f"tenant {tenant_id} is {config.status}")
    pool = pool_of(config, default_pool)
    if capacity(pool) == 0:
        return Admission(refusal=f"tenant {tenant_id}'s pool {pool!r} does not exist")
    refusal = kind_refusal(kind, pool, served(pool))
    return Admission(pool=pool) if refusal is None else Admission(refusal=refusal)


def kind_refusal(kind: str, pool: str, served: frozenset[str] | None) -> str | None:
    """Why `pool` cannot take a job of `kind` (None: it can, or its kinds are not known)."""
    if served is None or kind in served:
        return None
    runs = ", ".join(sorted(served))
    return f"no worker of pool {pool} runs jobs of kind {kind!r} (it runs: {runs})"


def may_start(config: TenantConfig | None, limits: JobLimits, in_flight: int) -> bool:
    """Whether a tenant may start one more job now, its rate aside: active (or not
    known to be otherwise) and under its concurrency."""
    if config is not None and config.status != TenantStatus.ACTIVE.value:
        return False
    return in_flight < limits.max_concurrency
