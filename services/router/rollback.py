"""A service's routing history, and rolling it back to an earlier point.

Both are read from the log: the service's routing events, folded into a
`RoutingTable` up to a sequence or a time. A rollback is the ordinary route
commands that take the table of now to the table of then (default, rollout,
pins), each checked by the router like any other and recorded with the reason
in the history. The steps are worked out from the table of now, so a rollback
that stopped half-way, run again, sends only what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantplane.contracts.ids import PLATFORM
from tenantplane.contracts.routing import (
    PinTenant,
    Rollout,
    ServiceCommand,
    SetDefault,
    UnpinTenant,
)
from tenantplane.services.router.table import RoutingTable, evolve
from tenantplane.services.runtime.errors import InvalidTransition
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.timetravel import fold_until


@dataclass(frozen=True)
class RouteChange:
    """One routing event: who, when, why, and what it did."""

    seq: int
    at: datetime
    actor: str
    reason: str
    event: str
    tenant: str | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """For CLI output."""
        return {**self.__dict__, "at": self.at.isoformat(timespec="seconds")}


async def route_history(log: EventLog, service: str) -> list[RouteChange]:
    """Every routing event of `service`, oldest first."""
    changes = []
    async for stored in log.read(log.subjects.routes_of(service)):
        envelope = stored.envelope
        detail = envelope.data.model_dump(mode="json", exclude={"service"})
        tenant = None if envelope.tenant_id == PLATFORM else envelope.tenant_id
        change = RouteChange(
            stored.seq, envelope.occurred_at, envelope.actor, envelope.reason,
            envelope.type, tenant, detail,
        )  # fmt: skip
        changes.append(change)
    return changes


async def table_at(
    log: EventLog, service: str, *, seq: int | None = None, at: datetime | None = None
) -> RoutingTable:
    """The routing of `service` as of stream sequence `seq`, or time `at` (default: now)."""
    boundary = log.subjects.routes_of(service)
    return await fold_until(log, boundary, RoutingTable(service), evolve, seq=seq, at=at)


def rollback_steps(now: RoutingTable, then: RoutingTable, **who: Any) -> list[ServiceCommand]:
    """The commands that take the routing of `now` back to `then`: the default first,
    then the rollout, then each pin. `who` are the commands' actor and reason.

    Raises:
        InvalidTransition: `then` routes to a version retired since (retired versions are
            never reused: register a new one), or had no default where now there is one.
    """
    service = now.service
    wanted = {then.default, *(p for p in then.pins.values())}
    if then.rollout is not None:
        wanted.add(then.rollout.version)
    gone = sorted(v for v in wanted if v is not None and v not in now.versions)
    if gone:
        raise InvalidTransition(
            f"{service} {', '.join(gone)} is retired since that point; a rollback cannot bring "
            "back a retired version (register a new one)"
        )
    steps: list[ServiceCommand] = []
    if then.default != now.default:
        if then.default is None:
            raise InvalidTransition(f"{service} had no default then; a default cannot be unset")
        steps.append(SetDefault(target=service, version=then.default, **who))
    if then.rollout is not None and then.rollout != now.rollout:
        r = then.rollout
        steps.append(
            Rollout(target=service, version=r.version, percent=r.percent, cohort=r.cohort, **who)
        )
    elif then.rollout is None and now.rollout is not None:
        ends = Rollout(target=service, version=now.rollout.version, percent=0, **who)
        steps.append(ends)
    for tenant in sorted(set(now.pins) | set(then.pins)):
        pinned = then.pins.get(tenant)
        if pinned is None:
            steps.append(UnpinTenant(target=service, tenant_id=tenant, **who))
        elif now.pins.get(tenant) != pinned:
            steps.append(PinTenant(target=service, tenant_id=tenant, version=pinned, **who))
    return steps
