"""Config rollouts: the rollout aggregate's state, and what the log says of rollouts and
tenants (`rollout_writes.py` executes the commands).

A rollout is its own aggregate; what it did to each tenant is in that tenant's
events (contracts/rollouts.py). These reads serve both the writer and the CLI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from tenantplane.contracts import cohorts
from tenantplane.contracts.rollouts import (
    RolloutEnded,
    RolloutPercentSet,
    RolloutStarted,
)
from tenantplane.services.config.state import TenantState
from tenantplane.services.config.state import evolve as evolve_tenant
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class RolloutState:
    """One rollout as its events made it."""

    name: str
    values: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    percent: float = 0.0
    cohort: str = ""
    match: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    except_explicit: bool = False
    started: bool = False
    outcome: str | None = None  # promoted or aborted, once ended

    @property
    def active(self) -> bool:
        """Started and not ended."""
        return self.started and self.outcome is None

    def matches(self, tenant: TenantState) -> bool:
        """Whether a tenant exists and carries the rollout's labels."""
        return tenant.exists and self._labelled(tenant)

    def reaches(self, tenant: TenantState) -> bool:
        """Whether a tenant exists and is in the rollout's share."""
        return tenant.exists and self.selects(tenant)

    def selects(self, tenant: TenantState) -> bool:
        """Whether a tenant (offboarded or not) carries the labels and is in the first
        `percent` of the cohort (sticky: see contracts/cohorts.py)."""
        return self._labelled(tenant) and cohorts.includes(
            tenant.tenant_id, self.cohort, self.percent
        )

    def _labelled(self, tenant: TenantState) -> bool:
        return all(tenant.labels.get(k) == v for k, v in self.match.items())

    def describe(self) -> dict[str, Any]:
        """The rollout as an operator reads it."""
        status = self.outcome or ("active" if self.started else "none")
        return {
            "rollout": self.name,
            "status": status,
            "values": dict(self.values),
            "percent": self.percent,
            "cohort": self.cohort,
            "match": dict(self.match),
            "except_explicit": self.except_explicit,
        }


def evolve(state: RolloutState, stored: StoredEvent) -> RolloutState:
    """The rollout after one of its events."""
    match stored.envelope.data:
        case RolloutStarted() as started:
            return started_state(state, started)
        case RolloutPercentSet(percent=percent):
            return replace(state, percent=percent)
        case RolloutEnded(outcome=outcome):
            return replace(state, outcome=outcome)
    return state


def started_state(state: RolloutState, started: RolloutStarted) -> RolloutState:
    return replace(
        state,
        values=MappingProxyType(dict(started.values)),
        percent=started.percent,
        cohort=started.cohort,
        match=MappingProxyType(dict(started.match)),
        except_explicit=started.except_explicit,
        started=True,
    )


async def all_rollouts(log: EventLog) -> dict[str, RolloutState]:
    """Every rollout ever started, by name."""
    found: dict[str, RolloutState] = {}
    async for _, stored in log.scan(log.subjects.all_rollouts()):
        if stored is not None:
            name = getattr(stored.envelope.data, "rollout", "")
            found[name] = evolve(found.get(name) or RolloutState(name), stored)
    return found


async def all_tenants(log: EventLog) -> dict[str, TenantState]:
    """Every tenant's lifecycle (status, labels) as the log has it, by id."""
    found: dict[str, TenantState] = {}
    async for _, stored in log.scan(log.subjects.kind("lifecycle")):
        if stored is not None:
            tenant = stored.envelope.tenant_id
            found[tenant] = evolve_tenant(found.get(tenant) or TenantState(tenant), stored)
    return found


def status_of(state: RolloutState, tenants: Mapping[str, TenantState]) -> dict[str, Any]:
    """How many tenants the rollout selects, by status (offboarded ones counted apart),
    and how many carry its labels."""
    counts: Counter[str] = Counter()
    for tenant in tenants.values():
        if state.selects(tenant):
            counts[str(tenant.status)] += 1
    return {
        "matched": sum(1 for t in tenants.values() if state.matches(t)),
        "active": counts["active"],
        "suspended": counts["suspended"],
        "offboarded": counts["offboarded"],
    }
