"""What a config rollout asks of each tenant: internal commands of the tenant aggregate.

A rollout's writer (services/config/rollouts.py) sends these to the tenant
writer, one per tenant, each with the rollout command's idempotency key (scoped
to the tenant, so a retried rollout command changes each tenant once). They are
not on the wire: operators send rollout commands, never these.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tenantplane.contracts.commands import TenantCommand


class _Step(TenantCommand):
    service: ClassVar[str] = "config"
    rollout: str


class JoinRollout(_Step):
    """See the rollout's values over the tenant's own (with `except_explicit`, keys the
    tenant has its own value for keep it)."""

    name: ClassVar[str] = "rollout.join"
    values: dict[str, Any]
    except_explicit: bool = False


class LeaveRollout(_Step):
    """Stop seeing the rollout's values: promoted, they become the tenant's own."""

    name: ClassVar[str] = "rollout.leave"
    promoted: bool


class AdoptRollout(_Step):
    """At a promotion: a tenant the rollout did not reach takes its values as its own
    (a tenant it reached leaves it, promoted)."""

    name: ClassVar[str] = "rollout.adopt"
    values: dict[str, Any]
    except_explicit: bool = False
