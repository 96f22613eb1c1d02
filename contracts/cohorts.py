"""Tenant cohorts: one stable hash that puts each tenant at a point in [0, 100).

A cohort is a named ordering of all tenants. A tenant is "in the first P% of
cohort C" when `point(tenant, C) < P`. The point depends only on the tenant id
and the cohort's name, so:

- raising a percentage only adds tenants, it never removes one (sticky);
- two features that name the same cohort select the same tenants: a route
  rollout of `billing` v2 at 10% and a config rollout at 10% on cohort
  `release-42` reach exactly the same tenants;
- different cohort names (the default: each route's service, each config
  rollout's own name) spread over independent sets of tenants.

The hash is SHA-256 of `<cohort>/<tenant id>`, its first 4 bytes read as a
big-endian integer and scaled to [0, 100). It is part of the contract:
services in any language compute the same point (docs/routing.md shows how).
"""

from __future__ import annotations

import hashlib

from tenantplane.contracts.ids import Name

CohortName = Name  # a cohort is named like a service: lowercase letters, digits, '-', '_'

_SPAN = 2**32


def point(tenant_id: str, cohort: str) -> float:
    """A tenant's sticky place in [0, 100) in `cohort`."""
    digest = hashlib.sha256(f"{cohort}/{tenant_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / _SPAN * 100


def includes(tenant_id: str, cohort: str, percent: float) -> bool:
    """Whether a tenant is in the first `percent` of `cohort`."""
    return point(tenant_id, cohort) < percent
