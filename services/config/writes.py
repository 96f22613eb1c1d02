"""The write side: load a tenant, decide, append with optimistic concurrency."""

from __future__ import annotations

import asyncio
import random
import weakref

from contracts.commands import TenantCommand
from contracts.envelope import Envelope
from contracts.ids import derived_event_id
from services.config.decide import decide
from services.config.schema import ConfigSchema
from services.config.state import TenantState, evolve
from services.runtime.commands import Outcome
from services.runtime.errors import ConcurrencyConflict
from services.runtime.eventlog import EventLog, Expected, StoredEvent

MAX_ATTEMPTS = 30


class TenantWrites:
    """Executes tenant commands; one instance per service process.

    Commands of one tenant run one at a time in this process, so they never
    conflict with each other. Tenants' states are cached and used
    optimistically: the append's expected sequence catches a write by another
    replica, and the state is then refreshed from the log and the command
    decided again, after a short random pause so racing replicas spread out.
    """

    def __init__(self, log: EventLog, schema: ConfigSchema) -> None:
        self.log = log
        self.schema = schema
        self._states: dict[str, TenantState] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def handle(self, command: TenantCommand) -> Outcome:
        """Apply a tenant command (any of contracts.tenants / contracts.config)."""
        lock = self._locks.setdefault(command.tenant_id, asyncio.Lock())
        async with lock:
            return await self._handle(command)

    async def _handle(self, command: TenantCommand) -> Outcome:
        tenant_id = command.tenant_id
        state = self._states.get(tenant_id) or await self.refresh(tenant_id)
        for attempt in range(MAX_ATTEMPTS):
            replay = state.commands.get(command.idempotency_key)
            if replay is not None:
                return Outcome((replay,), replayed=True)
            try:
                return await self._append(state, command)
            except ConcurrencyConflict:
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
                state = await self.refresh(tenant_id)
        raise ConcurrencyConflict(self.log.subjects.tenant_state(tenant_id), state.version)

    async def _append(self, state: TenantState, command: TenantCommand) -> Outcome:
        key = command.idempotency_key
        envelope = Envelope.wrap(
            decide(state, command, self.schema),
            tenant_id=state.tenant_id,
            actor=command.actor,
            reason=command.reason,
            event_id=derived_event_id(key, 0),
            correlation_id=command.correlation_id or key,
            causation_id=key,
        )
        boundary = self.log.subjects.tenant_state(state.tenant_id)
        appended = await self.log.append(envelope, Expected(state.version, over=boundary))
        self._states[state.tenant_id] = evolve(
            state, StoredEvent(appended.seq, appended.subject, envelope)
        )
        return Outcome((appended,))

    async def refresh(self, tenant_id: str) -> TenantState:
        """Bring a tenant's cached state up to the head of the log."""
        state = self._states.get(tenant_id) or TenantState(tenant_id)
        boundary = self.log.subjects.tenant_state(tenant_id)
        async for stored in self.log.read(boundary, start_seq=state.version + 1):
            state = evolve(state, stored)
        self._states[tenant_id] = state
        return state
