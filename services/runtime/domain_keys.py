"""A domain's keys to its tenants' sealed fields (see `contracts.domains.sealed`).

The config service derives them from each tenant's data key for this domain
alone (`RevealDomainKey`) and answers sealed to a key made for that request, so
nothing on the wire sees them. They are kept in memory for `ttl_s`: after a
tenant is offboarded with shredding, what this process seals or opens of it
fails within that time, and a new process opens nothing of it at all.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import RevealDomainKey
from tenantplane.contracts.domains import DomainEvent
from tenantplane.contracts.sealed import SealedValue
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import (
    InvalidRequest,
    SecretUnavailable,
    TenantNotFound,
)
from tenantplane.services.security.sealing import OneTimeKey

DEFAULT_TTL_S = 60.0


class DomainKeys:
    """Seals and opens one domain's sealed fields, tenant by tenant."""

    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        domain: str,
        *,
        actor: str,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self.commands = CommandClient(nc, subjects)
        self.domain = domain
        self.actor = actor
        self.ttl_s = ttl_s
        # (tenant, key id or None for the current one) -> (key id, key, fetched at)
        self._keys: dict[tuple[str, str | None], tuple[str, Fernet, float]] = {}

    async def seal_event(self, tenant_id: str, event: DomainEvent) -> DomainEvent:
        """`event` with each sealed field's value sealed (None and sealed values as they are)."""
        plain = event.unsealed()
        if not plain:
            return event
        key_id, key = await self._key(tenant_id, None)
        sealed = {
            name: SealedValue(key_id=key_id, ciphertext=key.encrypt(orjson.dumps(value)).decode())
            for name, value in plain.items()
        }
        return event.model_copy(update=sealed)

    async def open_event(self, tenant_id: str, event: DomainEvent) -> DomainEvent:
        """`event` with each sealed field opened; None where its key was destroyed."""
        opened: dict[str, Any] = {}
        for name in event.sealed_fields():
            value = getattr(event, name)
            if isinstance(value, SealedValue):
                opened[name] = await self._open(tenant_id, value)
        return event.model_copy(update=opened) if opened else event

    async def _open(self, tenant_id: str, sealed: SealedValue) -> Any:
        try:
            _, key = await self._key(tenant_id, sealed.key_id)
            return orjson.loads(key.decrypt(sealed.ciphertext.encode()))
        except (SecretUnavailable, TenantNotFound, InvalidToken):
            return None  # shredded: unreadable, for good

    async def _key(self, tenant_id: str, key_id: str | None) -> tuple[str, Fernet]:
        found = self._keys.get((tenant_id, key_id))
        now = time.monotonic()
        if found is not None and now - found[2] < self.ttl_s:
            return found[0], found[1]
        one_time = OneTimeKey.new()
        command = RevealDomainKey(
            tenant_id=tenant_id, domain=self.domain, key_id=key_id,
            public_key=one_time.public, actor=self.actor,
        )  # fmt: skip
        result = (await self.commands.send(command)).result or {}
        if not isinstance(result.get("sealed"), dict):
            raise InvalidRequest("the config service answered a key request without a key")
        given = (str(result["key_id"]), Fernet(one_time.open(result["sealed"])), now)
        self._keys[(tenant_id, key_id)] = self._keys[(tenant_id, given[0])] = given
        return given[0], given[1]
