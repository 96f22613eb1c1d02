"""The config SDK for services: tenant config from an in-process cache, pushed on change.

    client = await AsyncConfigClient.connect(settings)      # or ConfigClient.connect(settings)
    config = await client.get_config("acme")                 # TenantConfig, cached
    limit = config.get_int("rate_limit")

The cache (services/runtime/cache.py, shared with the routing SDK) holds one
consistent snapshot per tenant (meta and config read in one Redis
transaction), refreshed in place when the config projector announces a change
of that tenant.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.config import RevealSecrets
from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.contracts.keys import Keys
from tenantplane.contracts.subjects import Subjects
from tenantplane.contracts.tenants import TenantStatus
from tenantplane.services.config import PROJECTION
from tenantplane.services.config.reader import decode_config
from tenantplane.services.config.schema import DEFAULT_SCHEMA, ConfigSchema
from tenantplane.services.runtime.cache import CachedReader, PushCache
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.errors import (
    InvalidConfigValue,
    InvalidRequest,
    TenantNotFound,
    TenantSuspended,
)
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import read_hashes
from tenantplane.services.runtime.stores.redis_ops import as_text
from tenantplane.services.runtime.transient import unavailable_raised
from tenantplane.services.security.sealing import OneTimeKey

_MISSING = object()


@dataclass(frozen=True)
class TenantConfig(Mapping[str, Any]):
    """One tenant's config at `version`, with typed accessors and schema defaults.

    `version` is the tenant's last change of any kind; `config_version` its last
    config change, what a read-modify-write passes as `if_version`.
    """

    tenant_id: str
    status: str
    plan: str
    version: int
    data: Mapping[str, Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    config_version: int = 0

    def __getitem__(self, key: str) -> Any:
        if key in self.data:
            return self.data[key]
        return self.defaults[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, else its schema default, else `default` (the hot path)."""
        value = self.data.get(key, _MISSING)
        return self.defaults.get(key, default) if value is _MISSING else value

    def __iter__(self) -> Iterator[str]:
        return iter({**self.defaults, **self.data})

    def __len__(self) -> int:
        return len({**self.defaults, **self.data})

    def get_int(self, key: str, default: int | None = None) -> int:
        """An int value (a bool is not an int here)."""
        value: int = self._typed(key, (int,), default)
        return value

    def get_float(self, key: str, default: float | None = None) -> float:
        """A number, as float."""
        return float(self._typed(key, (int, float), default))

    def get_bool(self, key: str, default: bool | None = None) -> bool:
        """A bool value."""
        value: bool = self._typed(key, (bool,), default)
        return value

    def get_str(self, key: str, default: str | None = None) -> str:
        """A string value."""
        value: str = self._typed(key, (str,), default)
        return value

    def _typed(self, key: str, kinds: tuple[type, ...], default: Any) -> Any:
        value = self.get(key, default)
        if type(value) in kinds:  # the common case, one check (a bool's type is not int)
            return value
        if value is None:
            raise KeyError(f"{key} is not set for {self.tenant_id} and has no default")
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            wanted = "/".join(k.__name__ for k in kinds)
            raise InvalidConfigValue(f"{key} of {self.tenant_id} is {value!r}, not {wanted}")
        return value


class AsyncConfigClient(CachedReader[TenantConfig]):
    """Cached, push-refreshed reads of tenant config for asyncio services."""

    def __init__(
        self,
        nc: NATS,
        redis: aioredis.Redis,
        subjects: Subjects,
        keys: Keys,
        *,
        schema: ConfigSchema = DEFAULT_SCHEMA,
        max_staleness_s: float = 30.0,
        owns_connections: bool = False,
        pool: str = "default",
        actor: str = "config-sdk",
    ) -> None:
        """`pool`: the worker pool this client reveals secrets for (only its tenants')."""
        cache: PushCache[TenantConfig] = PushCache(
            nc, subjects, PROJECTION, self._load, lambda c: c.version,
            load_many=self._load_many, max_staleness_s=max_staleness_s,
        )  # fmt: skip
        super().__init__(nc, redis, cache, owns_connections=owns_connections)
        self.subjects = subjects
        self.keys = keys
        self.pool, self.actor = pool, actor
        self.defaults = schema.defaults()

    @classmethod
    async def connect(cls, settings: Settings, **options: Any) -> AsyncConfigClient:
        """A started client with its own connections."""
        nc = await connect_nats(settings, "tenantplane-config-sdk")
        options.setdefault("pool", settings.default_pool)
        client = cls(
            nc,
            connect_redis(settings),
            settings.subjects,
            settings.keys,
            schema=ConfigSchema.load(settings.config_schema_file),
            owns_connections=True,
            **options,
        )
        await client.start()
        return client

    async def secrets(
        self, tenant_id: str, *keys: str, job_id: str | None = None
    ) -> dict[str, Any]:
        """A tenant's decrypted secrets (all, or `keys`), asked of the config service for
        this client's pool (refused unless the pool serves the tenant).

        The reply is sealed to a key made for this call alone, so nothing on the wire
        sees plaintext. Never cached: each call asks, so shredding or rotation takes
        effect at once, and each reveal is audited.
        """
        key = OneTimeKey.new()
        command = RevealSecrets(
            tenant_id=tenant_id, keys=keys, pool=self.pool, public_key=key.public,
            job_id=job_id, actor=self.actor, reason="reveal for a job" if job_id else "",
        )  # fmt: skip
        reply = await CommandClient(self.nc, self.subjects).send(command)
        sealed = (reply.result or {}).get("sealed")
        if not isinstance(sealed, dict):
            raise InvalidRequest("the config service answered a reveal without a sealed reply")
        revealed: dict[str, Any] = orjson.loads(key.open(sealed))
        return revealed

    async def warm_up(self, tenants: Iterable[str] | None = None) -> int:
        """Load tenants into the cache (all of them by default); returns how many."""
        if tenants is None:
            with unavailable_raised():
                tenants = [as_text(t) for t in await self.redis.smembers(self.keys.tenants())]
        return await self.cache.warm_up(tenants)

    async def get_config(
        self, tenant_id: str, *, allow_suspended: bool = False, fresh: bool = False
    ) -> TenantConfig:
        """A tenant's config, from the cache when fresh enough (or, with `fresh`, read now).

        Raises:
            TenantNotFound: no such tenant (never registered, or offboarded).
            TenantSuspended: the tenant is suspended (unless `allow_suspended`).
            Unavailable: the config is not cached and Redis did not answer.
        """
        config = None if fresh else self.cache.cached(tenant_id)
        if config is None:
            config = await self.cache.refresh(validate_tenant_id(tenant_id))
        return _check(config, allow_suspended)

    def cached(self, tenant_id: str) -> TenantConfig | None:
        """The cached config if it is fresh enough; never does I/O."""
        return self.cache.cached(tenant_id)

    def on_change(self, callback: Callable[[str, TenantConfig], None]) -> None:
        """Call `callback(tenant_id, config)` when a cached tenant's config changes.

        Runs on the client's event loop right after the new config is cached;
        keep it short. Only tenants this client has read are watched.
        """
        self.cache.listen(callback)

    async def _load(self, tenant_id: str) -> TenantConfig:
        found = await self._load_many([tenant_id])
        if tenant_id not in found:
            raise TenantNotFound(f"no tenant {tenant_id}", tenant_id=tenant_id)
        return found[tenant_id]

    async def _load_many(self, tenant_ids: list[str]) -> dict[str, TenantConfig]:
        """The configs of the tenants that exist, in one round trip (each read atomically)."""
        replies = await read_hashes(
            self.redis, [[self.keys.tenant_meta(t), self.keys.tenant_config(t)] for t in tenant_ids]
        )
        return {
            tenant_id: self._config(tenant_id, meta, config)
            for tenant_id, (meta, config) in zip(tenant_ids, replies, strict=True)
            if meta
        }

    def _config(
        self, tenant_id: str, meta: Mapping[Any, Any], raw: Mapping[Any, Any]
    ) -> TenantConfig:
        text = {as_text(k): as_text(v) for k, v in meta.items()}
        return TenantConfig(
            tenant_id=tenant_id,
            status=text.get("status", ""),
            plan=text.get("plan", ""),
            version=int(text.get("version", 0)),
            config_version=int(text.get("config_version", 0)),
            data=decode_config(raw),
            defaults=self.defaults,
        )


_SUSPENDED = TenantStatus.SUSPENDED.value


def _check(config: TenantConfig, allow_suspended: bool) -> TenantConfig:
    if config.status == _SUSPENDED and not allow_suspended:
        raise TenantSuspended(f"tenant {config.tenant_id} is suspended", tenant_id=config.tenant_id)
    return config


class ConfigClient:
    """The same client for threaded (non-asyncio) code: a background loop does the I/O.

    Cached reads are served on the caller's thread without touching the loop.
    """

    def __init__(self, settings: Settings, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client: AsyncConfigClient = self._call(AsyncConfigClient.connect(settings, **options))

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def get_config(self, tenant_id: str, *, allow_suspended: bool = False) -> TenantConfig:
        """See `AsyncConfigClient.get_config`."""
        config = self._client.cached(tenant_id)
        if config is not None:
            return _check(config, allow_suspended)
        result: TenantConfig = self._call(
            self._client.get_config(tenant_id, allow_suspended=allow_suspended)
        )
        return result

    def secrets(self, tenant_id: str, *keys: str) -> dict[str, Any]:
        """See `AsyncConfigClient.secrets`."""
        revealed: dict[str, Any] = self._call(self._client.secrets(tenant_id, *keys))
        return revealed

    def warm_up(self, tenants: Iterable[str] | None = None) -> int:
        """See `AsyncConfigClient.warm_up`."""
        count: int = self._call(self._client.warm_up(tenants))
        return count

    def close(self) -> None:
        """Close connections and stop the background loop."""
        self._call(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
