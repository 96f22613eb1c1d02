"""Reads of the config read model in Redis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.contracts.keys import Keys
from tenantplane.services.runtime.errors import TenantNotFound
from tenantplane.services.runtime.stores.redis_ops import as_text

REDACTED = "<secret>"


@dataclass(frozen=True)
class TenantView:
    """A tenant as the read model shows it."""

    tenant_id: str
    status: str
    plan: str
    display_name: str
    labels: dict[str, str]
    version: int
    config_version: int

    def to_dict(self) -> dict[str, Any]:
        """For CLI output."""
        return self.__dict__.copy()


def decode_config(
    raw: Mapping[bytes | str, bytes | str], *, reveal_sealed: bool = False
) -> dict[str, Any]:
    """The config hash as values; sealed secrets are redacted unless asked for."""
    config: dict[str, Any] = {}
    for key, value in raw.items():
        decoded = orjson.loads(value)
        if isinstance(decoded, dict) and "$sealed" in decoded and not reveal_sealed:
            decoded = REDACTED
        config[as_text(key)] = decoded
    return config


class ConfigReader:
    """Tenants and their config, straight from Redis."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def tenant(self, tenant_id: str) -> TenantView:
        """One tenant's metadata.

        Raises:
            TenantNotFound: no such tenant in the read model.
        """
        meta = await self.redis.hgetall(self.keys.tenant_meta(validate_tenant_id(tenant_id)))
        if not meta:
            raise TenantNotFound(f"no tenant {tenant_id}", tenant_id=tenant_id)
        return _view(tenant_id, meta)

    async def tenants(self) -> list[TenantView]:
        """Every tenant, sorted by id."""
        ids = sorted(as_text(m) for m in await self.redis.smembers(self.keys.tenants()))
        async with self.redis.pipeline(transaction=False) as pipe:
            for tenant_id in ids:
                pipe.hgetall(self.keys.tenant_meta(tenant_id))
            metas = await pipe.execute()
        return [_view(t, m) for t, m in zip(ids, metas, strict=True) if m]

    async def snapshot(self, tenant_ids: list[str]) -> dict[str, tuple[TenantView, dict[str, Any]]]:
        """Meta and own config of many tenants in one round trip (under a key a rollout
        holds, the tenant's own value, as GitOps compares); absent tenants are left out."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for tenant_id in tenant_ids:
                pipe.hgetall(self.keys.tenant_meta(tenant_id))
                pipe.hgetall(self.keys.tenant_config(tenant_id))
                pipe.hgetall(self.keys.tenant_own(tenant_id))
            replies = await pipe.execute()
        found = {}
        for i, tenant_id in enumerate(tenant_ids):
            meta, config, own = replies[3 * i : 3 * i + 3]
            if meta:
                found[tenant_id] = (_view(tenant_id, meta), decode_config(_own(config, own)))
        return found

    async def config(self, tenant_id: str) -> dict[str, Any]:
        """One tenant's config (secrets redacted).

        Raises:
            TenantNotFound: no such tenant in the read model.
        """
        await self.tenant(tenant_id)
        return decode_config(await self.redis.hgetall(self.keys.tenant_config(tenant_id)))


def _own(
    config: Mapping[bytes | str, bytes | str], own: Mapping[bytes | str, bytes | str]
) -> dict[bytes | str, bytes | str]:
    """A config hash with each held field's own value put back (or the field gone)."""
    mine = {k: v for k, v in config.items() if k not in own}
    mine.update({k: v for k, v in own.items() if v})
    return mine


def _view(tenant_id: str, meta: Mapping[bytes | str, bytes | str]) -> TenantView:
    text = {as_text(k): as_text(v) for k, v in meta.items()}
    return TenantView(
        tenant_id=tenant_id,
        status=text.get("status", ""),
        plan=text.get("plan", ""),
        display_name=text.get("display_name", ""),
        labels=orjson.loads(text.get("labels", "{}")),
        version=int(text.get("version", 0)),
        config_version=int(text.get("config_version", 0)),
    )
