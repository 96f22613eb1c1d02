"""The config service's write side: tenant commands, with secrets sealed on the way in."""

from __future__ import annotations

from typing import Any, TypeGuard

import orjson

from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.config import (
    ReplaceConfig,
    RevealDomainKey,
    RevealSecrets,
    RevertConfig,
    SealedValue,
    SetConfig,
    ShowSealingKey,
)
from tenantplane.contracts.tenants import OffboardTenant
from tenantplane.services.config.decide import decide
from tenantplane.services.config.history import state_at
from tenantplane.services.config.schema import ConfigSchema
from tenantplane.services.config.secrets import SecretBox
from tenantplane.services.config.state import TenantState, evolve
from tenantplane.services.jobs.limits import pool_of
from tenantplane.services.runtime.aggregates import AggregateWrites, Change
from tenantplane.services.runtime.commands import Outcome
from tenantplane.services.runtime.errors import (
    InvalidConfigValue,
    InvalidRequest,
    SecretUnavailable,
    TenantNotFound,
)
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.security.audit import RevealAudit
from tenantplane.services.security.sealing import SEALED_TEXT, seal_to

# One secret value, as JSON. Sealed, it takes about 1.4 times as much of its event.
MAX_SECRET_BYTES = 64 * 1024


class TenantWrites(AggregateWrites[TenantState, TenantCommand]):
    """Executes tenant lifecycle and config commands (see `AggregateWrites`).

    The aggregate is the tenant: its lifecycle and config subjects together.
    """

    def __init__(
        self,
        log: EventLog,
        schema: ConfigSchema,
        box: SecretBox | None = None,
        *,
        audit: RevealAudit | None = None,
        default_pool: str = "default",
    ) -> None:
        super().__init__(log)
        self.schema = schema
        self.box = box
        self.audit = audit
        # Tenants with no `jobs.pool` of their own are served by this pool.
        self.default_pool = default_pool

    def key_of(self, command: TenantCommand) -> str:
        return command.tenant_id

    def boundary(self, key: str) -> str:
        return self.log.subjects.tenant_state(key)

    def initial(self, key: str) -> TenantState:
        return TenantState(key)

    def evolve(self, state: TenantState, stored: StoredEvent) -> TenantState:
        return evolve(state, stored)

    async def handle(self, command: TenantCommand) -> Outcome:
        """Apply a tenant command; a reveal of secrets is answered, not appended."""
        if isinstance(command, RevealSecrets):
            return await self._reveal((await self.refresh(command.tenant_id)).state, command)
        if isinstance(command, RevealDomainKey):
            return await self._domain_key((await self.refresh(command.tenant_id)).state, command)
        return await super().handle(command)

    async def change_for(self, state: TenantState, command: TenantCommand) -> Change | None:
        if isinstance(command, RevertConfig):
            replace, sealed = await self._reverted(state, command)
            data = decide(state, replace, self.schema, sealed)
        else:
            data = decide(state, command, self.schema, await self._sealed(state, command))
        if data is None:
            return None
        return Change(data, state.tenant_id)

    async def _reverted(
        self, state: TenantState, command: RevertConfig
    ) -> tuple[ReplaceConfig, dict[str, SealedValue]]:
        """The replacement that puts the config back as it was at the command's point, and
        its secrets: as they are now where they hold the same value, else sealed again."""
        tenant = state.tenant_id
        past = await state_at(self.log, tenant, seq=command.to_seq, at=command.to_time)
        if not past.exists:
            raise InvalidRequest(f"tenant {tenant} had no config at that point to revert to")
        sealed = {}
        for key, value in past.secrets.items():
            current = state.secrets.get(key)
            if current == value:
                sealed[key] = value
                continue
            box = self._box()
            plain = await box.open(tenant, value)
            same = current is not None and await _opens_to(box, tenant, current, plain)
            sealed[key] = current if same and current is not None else await box.seal(tenant, plain)
        fields = command.model_dump(include={"tenant_id", "actor", "reason", "idempotency_key",
                                             "correlation_id", "if_version"})  # fmt: skip
        return ReplaceConfig(values=dict(past.values), **fields), sealed

    async def settle(self, state: TenantState, command: TenantCommand) -> None:
        """Shred an offboarded tenant's data keys, only once the offboarding is in the log:
        a failed append leaves the tenant active with its secrets intact."""
        if isinstance(command, OffboardTenant) and command.shred_secrets and self.box is not None:
            await self.box.shred(state.tenant_id)

    async def _sealed(self, state: TenantState, command: TenantCommand) -> dict[str, SealedValue]:
        """The command's secret values, sealed; a set leaves out those that did not change."""
        if not isinstance(command, SetConfig | ReplaceConfig):
            return {}
        secret = {k: v for k, v in command.values.items() if self.schema.is_secret(k)}
        for key, value in command.values.items():
            if key not in secret and _sealed_text(value):
                raise InvalidConfigValue(
                    f"{key}: a sealed value, but {key} is no secret key", key=key
                )
        if not secret:
            return {}
        box = self._box()
        secret = {k: box.open_file_value(v) if _sealed_text(v) else v for k, v in secret.items()}
        self.schema.check(secret)
        for key, value in secret.items():
            size = len(orjson.dumps(value))
            if size > MAX_SECRET_BYTES:
                raise InvalidConfigValue(
                    f"{key}: a secret holds at most {MAX_SECRET_BYTES} bytes of JSON; "
                    f"this one has {size}",
                    key=key,
                )
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

    async def _reveal(self, state: TenantState, command: RevealSecrets) -> Outcome:
        """The tenant's secrets for a pool that serves it, sealed to the requester's key,
        recorded in the audit stream before they leave."""
        if not state.exists:
            raise TenantNotFound(f"no tenant {state.tenant_id}", tenant_id=state.tenant_id)
        serving = pool_of(state.effective, self.default_pool)
        if command.pool != serving:
            raise InvalidRequest(
                f"pool {command.pool} does not serve tenant {state.tenant_id}; "
                "its secrets are revealed only to its own pool"
            )
        wanted = command.keys or tuple(state.secrets)
        missing = [k for k in wanted if k not in state.secrets]
        if missing:
            raise InvalidRequest(f"no secret {', '.join(missing)} for {state.tenant_id}")
        box = self._box()
        values = {k: await box.open(state.tenant_id, state.secrets[k]) for k in wanted}
        if self.audit is not None:
            await self.audit.record(
                actor=command.actor, tenant_id=state.tenant_id, pool=command.pool,
                keys=wanted, job_id=command.job_id,
            )  # fmt: skip
        return Outcome(result={"sealed": seal_to(command.public_key, orjson.dumps(values))})

    async def sealing_key(self, command: ShowSealingKey) -> Outcome:
        """The public key to seal secrets to for files (see `ShowSealingKey`)."""
        return Outcome(result={"public_key": self._box().file_keys[0].public})

    async def _domain_key(self, state: TenantState, command: RevealDomainKey) -> Outcome:
        """A domain's key to the tenant's sealed fields, sealed to the requester's key: to
        seal (the current key) only for a tenant not offboarded; to open (a named key)
        for as long as that key exists."""
        if command.key_id is None and not state.exists:
            raise TenantNotFound(
                f"no tenant {state.tenant_id} to seal for", tenant_id=state.tenant_id
            )
        purpose = f"domain/{command.domain}"
        key_id, key = await self._box().derived(state.tenant_id, purpose, command.key_id)
        return Outcome(result={"key_id": key_id, "sealed": seal_to(command.public_key, key)})


def _sealed_text(value: Any) -> TypeGuard[str]:
    """Whether `value` is a value sealed with `tenantctl secrets seal`."""
    return isinstance(value, str) and value.startswith(SEALED_TEXT)


async def _opens_to(box: SecretBox, tenant_id: str, sealed: SealedValue, value: Any) -> bool:
    """Whether `sealed` holds `value` (False when it no longer opens)."""
    try:
        return bool(await box.open(tenant_id, sealed) == value)
    except SecretUnavailable:
        return False
