"""The write side: load a tenant, decide, append with optimistic concurrency."""

from __future__ import annotations

import asyncio
import random
import weakref
from typing import Any

from contracts.commands import TenantCommand
from contracts.config import ReplaceConfig, RevealSecrets, SealedValue, SetConfig
from contracts.envelope import Envelope
from contracts.ids import derived_event_id
from contracts.tenants import OffboardTenant
from services.config.decide import decide
from services.config.schema import ConfigSchema
from services.config.secrets import SecretBox, SecretUnavailable
from services.config.state import TenantState, evolve
from services.runtime.commands import Outcome
from services.runtime.errors import ConcurrencyConflict, InvalidRequest, TenantNotFound
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

    def __init__(self, log: EventLog, schema: ConfigSchema, box: SecretBox | None = None) -> None:
        self.log = log
        self.schema = schema
        self.box = box
        self._states: dict[str, TenantState] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def handle(self, command: TenantCommand) -> Outcome:
        """Apply a tenant command (any of contracts.tenants / contracts.config)."""
        lock = self._locks.setdefault(command.tenant_id, asyncio.Lock())
        async with lock:
            return await self._handle(command)

    async def _handle(self, command: TenantCommand) -> Outcome:
        tenant_id = command.tenant_id
        if isinstance(command, RevealSecrets):
            return await self._reveal(await self.refresh(tenant_id), command.keys)
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
        data = decide(state, command, self.schema, await self._sealed(state, command))
        if data is None:
            return Outcome(())
        if isinstance(command, OffboardTenant) and command.shred_secrets and self.box is not None:
            await self.box.shred(state.tenant_id)
        key = command.idempotency_key
        envelope = Envelope.wrap(
            data,
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

    async def _sealed(self, state: TenantState, command: TenantCommand) -> dict[str, SealedValue]:
        """The command's secret values, sealed; a set leaves out those that did not change."""
        if not isinstance(command, SetConfig | ReplaceConfig):
            return {}
        secret = {k: v for k, v in command.values.items() if self.schema.is_secret(k)}
        if not secret:
            return {}
        box = self._box()
        self.schema.check(secret)
        sealed = {}
        for key, value in secret.items():
            current = state.secrets.get(key)
            if current is not None and await _opens_to(box, state.tenant_id, current, value):
                if isinstance(command, ReplaceConfig):
                    sealed[key] = current
                continue
            sealed[key] = await box.seal(state.tenant_id, value)
        return sealed

    def _box(self) -> SecretBox:
        if self.box is None:
            raise InvalidRequest(
                "secret keys need a master key: set TENANTPLANE_SECRETS_MASTER_KEYS "
                "or TENANTPLANE_SECRETS_MASTER_KEY_FILE for the config service"
            )
        return self.box

    async def _reveal(self, state: TenantState, keys: tuple[str, ...]) -> Outcome:
        if not state.exists:
            raise TenantNotFound(f"no tenant {state.tenant_id}", tenant_id=state.tenant_id)
        wanted = keys or tuple(state.secrets)
        missing = [k for k in wanted if k not in state.secrets]
        if missing:
            raise InvalidRequest(f"no secret {', '.join(missing)} for {state.tenant_id}")
        if not wanted:
            return Outcome(result={"secrets": {}})
        box = self._box()
        values = {k: await box.open(state.tenant_id, state.secrets[k]) for k in wanted}
        return Outcome(result={"secrets": values})

    async def refresh(self, tenant_id: str) -> TenantState:
        """Bring a tenant's cached state up to the head of the log."""
        state = self._states.get(tenant_id) or TenantState(tenant_id)
        boundary = self.log.subjects.tenant_state(tenant_id)
        async for stored in self.log.read(boundary, start_seq=state.version + 1):
            state = evolve(state, stored)
        self._states[tenant_id] = state
        return state


async def _opens_to(box: SecretBox, tenant_id: str, sealed: SealedValue, value: Any) -> bool:
    """Whether `sealed` holds `value` (False when it no longer opens)."""
    try:
        return bool(await box.open(tenant_id, sealed) == value)
    except SecretUnavailable:
        return False
