"""Config rollout commands: the rollout aggregate and how it carries itself to each tenant.

A rollout command appends (at most) one event to the rollout's own subject: the
intent. Its `follow_up` then brings every tenant in line with the rollout as it
now stands, through the tenant writer, one tenant event each:

- active: each tenant in the first `percent` of the cohort (and carrying the
  rollout's labels) joins it, once;
- promoted: each tenant carrying the labels takes the values as its own (a
  member leaves the rollout promoted, any other tenant gets its values set);
- aborted: each member leaves it, back on its own values.

Every run reads the whole picture again and only appends what is missing, so a
command re-sent after a crash (or any later command of the rollout) finishes
the work; tenants registered during a rollout join at its next command.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tenantplane.contracts.ids import PLATFORM
from tenantplane.contracts.rollouts import (
    AbortRollout,
    PromoteRollout,
    RolloutCommand,
    RolloutEnded,
    RolloutPercentSet,
    RolloutStarted,
    SetRolloutPercent,
    StartRollout,
)
from tenantplane.services.config.rollouts import (
    RolloutState,
    all_rollouts,
    all_tenants,
    evolve,
    started_state,
    status_of,
)
from tenantplane.services.config.schema import ConfigSchema
from tenantplane.services.config.state import TenantState
from tenantplane.services.config.steps import AdoptRollout, JoinRollout, LeaveRollout
from tenantplane.services.config.writes import TenantWrites
from tenantplane.services.runtime.aggregates import AggregateWrites, Change
from tenantplane.services.runtime.commands import Outcome
from tenantplane.services.runtime.errors import InvalidRequest, InvalidTransition
from tenantplane.services.runtime.eventlog import StoredEvent

# Tenants changed at once by one rollout command.
CONCURRENCY = 32


class RolloutWrites(AggregateWrites[RolloutState, RolloutCommand]):
    """Executes rollout commands (see `AggregateWrites`); tenants change through `tenants`."""

    def __init__(self, tenants: TenantWrites, schema: ConfigSchema) -> None:
        super().__init__(tenants.log)
        self.tenants = tenants
        self.schema = schema

    def key_of(self, command: RolloutCommand) -> str:
        return command.rollout

    def boundary(self, key: str) -> str:
        return self.log.subjects.rollout(key)

    def initial(self, key: str) -> RolloutState:
        return RolloutState(key)

    def evolve(self, state: RolloutState, stored: StoredEvent) -> RolloutState:
        return evolve(state, stored)

    async def change_for(self, state: RolloutState, command: RolloutCommand) -> Change | None:
        match command:
            case StartRollout():
                return await self._start(state, command)
            case SetRolloutPercent(percent=percent):
                _require_active(state)
                if percent < state.percent:
                    raise InvalidRequest(
                        f"rollout {state.name} is at {state.percent:g}%; lowering it would take "
                        "tenants out, which a rollout never does: abort it instead"
                    )
                if percent == state.percent:
                    return None
                return _platform(RolloutPercentSet(rollout=state.name, percent=percent))
            case PromoteRollout():
                return _end(state, "promoted")
            case AbortRollout():
                return _end(state, "aborted")
        raise InvalidRequest(f"the config service does not handle {type(command).__name__}")

    async def _start(self, state: RolloutState, command: StartRollout) -> Change | None:
        cohort = command.cohort or command.rollout
        started = RolloutStarted(
            rollout=command.rollout,
            values=command.values,
            percent=command.percent,
            cohort=cohort,
            match=command.match,
            except_explicit=command.except_explicit,
        )
        if state.started:
            if state.active and started_state(RolloutState(state.name), started) == state:
                return None  # the same start again: its follow-up finishes the work
            if state.active:
                raise InvalidTransition(
                    f"rollout {state.name} is active with other values or tenants; set, "
                    "promote or abort it, or start one under a new name"
                )
            raise InvalidTransition(
                f"rollout {state.name} was {state.outcome} already; names are not reused: "
                "start one under a new name"
            )
        secret = sorted(k for k in command.values if self.schema.is_secret(k))
        if secret:
            raise InvalidRequest(
                f"secret keys are not rolled out ({', '.join(secret)}): set them per tenant"
            )
        # One schema for every tenant: a value it accepts, every tenant reached accepts.
        self.schema.check(dict(command.values))
        for other in (await all_rollouts(self.log)).values():
            taken = sorted(set(other.values) & set(command.values))
            if other.active and taken:
                raise InvalidTransition(
                    f"rollout {other.name} is active over {', '.join(taken)}; "
                    "promote or abort it before rolling out the same keys"
                )
        return _platform(started)

    async def follow_up(
        self, state: RolloutState, command: RolloutCommand, outcome: Outcome
    ) -> Outcome:
        """Bring every tenant in line with the rollout. The reply describes the rollout,
        counts its tenants, and gives `changed` (tenants changed now) and `last_seq`
        (the last of their events, what a reader waits for; None when none)."""
        tenants = await all_tenants(self.log)
        steps = [s for t in tenants.values() if (s := self._step(state, command, t)) is not None]
        seqs = await self._run(steps)
        result = {
            **state.describe(),
            **status_of(state, tenants),
            "changed": len(seqs),
            "last_seq": max(seqs, default=None),
        }
        return replace(outcome, result=result)

    def _step(
        self, state: RolloutState, command: RolloutCommand, tenant: TenantState
    ) -> JoinRollout | LeaveRollout | AdoptRollout | None:
        who = {
            "tenant_id": tenant.tenant_id,
            "rollout": state.name,
            "actor": command.actor,
            "reason": command.reason,
            "idempotency_key": command.idempotency_key,
            "correlation_id": command.correlation_id or command.idempotency_key,
        }
        values, protect = dict(state.values), state.except_explicit
        if state.active and state.reaches(tenant):
            return JoinRollout(values=values, except_explicit=protect, **who)
        if state.outcome == "promoted" and state.matches(tenant):
            return AdoptRollout(values=values, except_explicit=protect, **who)
        if state.outcome == "aborted" and state.reaches(tenant):
            return LeaveRollout(promoted=False, **who)
        return None

    async def _run(self, steps: list[JoinRollout | LeaveRollout | AdoptRollout]) -> list[int]:
        """Send each tenant its step, `CONCURRENCY` at a time; the sequences appended."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(step: JoinRollout | LeaveRollout | AdoptRollout) -> list[int]:
            async with gate:
                done = await self.tenants.handle(step)
                return [] if done.replayed else [a.seq for a in done.appended]

        return [seq for seqs in await asyncio.gather(*(one(s) for s in steps)) for seq in seqs]


def _require_active(state: RolloutState) -> None:
    if not state.started:
        raise InvalidRequest(f"no rollout {state.name}")
    if state.outcome is not None:
        raise InvalidTransition(f"rollout {state.name} was {state.outcome} already")


def _end(state: RolloutState, outcome: str) -> Change | None:
    """The end of a rollout; None when it ended so already (its follow-up finishes it)."""
    if state.outcome == outcome:
        return None
    _require_active(state)
    return _platform(RolloutEnded(rollout=state.name, outcome=outcome))


def _platform(data: RolloutStarted | RolloutPercentSet | RolloutEnded) -> Change:
    return Change(data, PLATFORM)
