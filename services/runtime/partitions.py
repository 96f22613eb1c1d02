"""Tenant partitions: a stable split of the tenants into N parts.

Partition `k` of `n` holds the tenants whose point in the `partition` cohort
(contracts/cohorts.py) falls in the k-th of n equal slices of [0, 100): every
process computes the same split from the tenant id alone, and a read model
whose keys are per tenant can be rebuilt by n processes, each replaying the
log for its tenants only, into the same keys.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tenantplane.contracts import cohorts
from tenantplane.contracts.ids import PLATFORM

COHORT = "partition"


@dataclass(frozen=True)
class Partition:
    """Partition `index` of `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index} of {self.count} does not exist")

    def includes(self, scope: str) -> bool:
        """Whether a tenant's events belong to this partition (the platform's go to the
        first: they are few, and a projection split by tenant keeps them in one place)."""
        if scope == PLATFORM:
            return self.index == 0
        return _index(scope, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"


@functools.lru_cache(maxsize=200_000)
def _index(tenant_id: str, count: int) -> int:
    return min(int(cohorts.point(tenant_id, COHORT) * count / 100), count - 1)
