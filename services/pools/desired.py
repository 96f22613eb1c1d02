"""Which dedicated worker pools should run, and what must change to get there.

The installation deploys its own pools (the Helm chart's `pools`, the local
system's default pool). A tenant assigned to any other pool name (`tenantctl
pool assign acme dedicated-acme`) gets a *dedicated* pool: it should run while
at least one active tenant is assigned to it, and not otherwise. This module is
pure: the reconciler feeds it the assignments read from the config read model
and what a backend reports as running, and hands the plan to that backend.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from tenantplane.contracts.tenants import TenantStatus
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.jobs.limits import POOL_KEY

_CHUNK = 2000  # tenants read per Redis round trip


@dataclass(frozen=True)
class PoolSpec:
    """One pool's workers: how many processes (replicas), with how many threads each."""

    name: str
    replicas: int = 1
    threads: int = 4


@dataclass(frozen=True)
class Plan:
    """The changes that take running pools to the desired ones."""

    create: tuple[PoolSpec, ...] = ()
    update: tuple[PoolSpec, ...] = ()
    delete: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (self.create or self.update or self.delete)

    def summary(self) -> dict[str, list[str]]:
        """Pool names per change, for logs and the CLI."""
        return {
            "create": [p.name for p in self.create],
            "update": [p.name for p in self.update],
            "delete": list(self.delete),
        }


def dedicated_pools(
    assignments: Mapping[str, str], static: Collection[str], template: PoolSpec
) -> dict[str, PoolSpec]:
    """The dedicated pools `assignments` (tenant -> pool) call for, shaped like `template`."""
    names = sorted({pool for pool in assignments.values() if pool not in static})
    return {name: PoolSpec(name, template.replicas, template.threads) for name in names}


def plan(desired: Mapping[str, PoolSpec], actual: Mapping[str, PoolSpec]) -> Plan:
    """Create what is missing, update what differs, delete what nobody needs."""
    return Plan(
        create=tuple(spec for name, spec in desired.items() if name not in actual),
        update=tuple(
            spec for name, spec in desired.items() if name in actual and actual[name] != spec
        ),
        delete=tuple(sorted(name for name in actual if name not in desired)),
    )


async def assignments(reader: ConfigReader) -> dict[str, str]:
    """tenant -> `jobs.pool` of every active tenant that names a pool."""
    active = [t.tenant_id for t in await reader.tenants() if t.status == TenantStatus.ACTIVE]
    found: dict[str, str] = {}
    for start in range(0, len(active), _CHUNK):
        for tenant_id, (_, config) in (
            await reader.snapshot(active[start : start + _CHUNK])
        ).items():
            pool = config.get(POOL_KEY)
            if isinstance(pool, str) and pool:
                found[tenant_id] = pool
    return found
