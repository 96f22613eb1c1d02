"""An in-process read cache kept fresh by a projection's change notifications.

Shared by every SDK that reads a Redis projection (tenant config, routing
tables). Entries are loaded on first use, refreshed in place when the
projection announces a change that concerns them (push), and never served
older than `max_staleness_s` without a new read. The whole cache is dropped
when NATS reconnects (notifications may have been missed) and when a rebuild
switches the read model.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tenantplane.contracts.subjects import REBUILT, Subjects
from tenantplane.services.runtime.errors import TenantplaneError
from tenantplane.services.runtime.transient import unavailable_raised

V = TypeVar("V")
# Loads in flight during a warm-up: well under a Redis client's connection pool (100).
WARM_UP_CONCURRENCY = 32
# Keys read per round trip by a warm-up with `load_many`.
WARM_UP_CHUNK = 500
_monotonic = time.monotonic


@dataclass
class _Entry(Generic[V]):
    value: V
    version: int
    loaded_at: float


class PushCache(Generic[V]):
    """Values by key, loaded by `load(key)` and refreshed on change notifications.

    `version(value)` orders loads, so a slow read never replaces a newer one, and
    a reader never goes backwards: after a reconnect or a rebuild, entries are
    only marked stale (the next read loads again), and a load that finds an older
    version, or nothing at all (a read model being rebuilt), keeps the newer value.
    `affected(token)` names the cached keys a notification for `token` (the
    tenant token of the change subject) concerns; by default the token itself.
    """

    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        projection: str,
        load: Callable[[str], Awaitable[V]],
        version: Callable[[V], int],
        *,
        affected: Callable[[str, Iterable[str]], Iterable[str]] | None = None,
        load_many: Callable[[list[str]], Awaitable[dict[str, V]]] | None = None,
        max_staleness_s: float = 30.0,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.projection = projection
        self._load = load
        self._load_many = load_many
        self._version = version
        self._affected = affected or (lambda token, _: (token,))
        self.max_staleness_s = max_staleness_s
        self._entries: dict[str, _Entry[V]] = {}
        self._listeners: list[Callable[[str, V], None]] = []
        self._reconnects = 0
        self._stats = nc.stats  # the client's own counters (a dict it updates in place)
        self._sub: Any = None

    async def start(self) -> None:
        """Listen for the projection's change notifications."""
        self._reconnects = self.nc.stats["reconnects"]
        subject = self.subjects.all_changes(self.projection)
        self._sub = await self.nc.subscribe(subject, cb=self._changed)
        await self.nc.flush()  # the server has it before the first read is cached

    async def close(self) -> None:
        """Stop listening."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    def cached(self, key: str) -> V | None:
        """The cached value if it is fresh enough; never does I/O (the SDKs' hot path)."""
        reconnects = self._stats["reconnects"]
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            self._mark_stale()
            return None
        entry = self._entries.get(key)
        if entry is None or _monotonic() - entry.loaded_at > self.max_staleness_s:
            return None
        return entry.value

    async def get(self, key: str) -> V:
        """The value of `key`, from the cache when fresh."""
        value = self.cached(key)
        return value if value is not None else await self.refresh(key)

    async def refresh(self, key: str) -> V:
        """Load `key` now; keeps whichever of the cached and loaded values is newer.

        A load that fails (the store is away, or the key is gone from a read model
        being rebuilt) keeps serving what is cached.

        Raises:
            Unavailable: the store could not be read, and nothing is cached.
        """
        try:
            with unavailable_raised():
                value = await self._load(key)
        except TenantplaneError:
            kept = self._entries.get(key)
            if kept is None:
                raise
            return kept.value  # gone from the read model: lost, and being rebuilt
        return self._keep(key, value)

    def _mark_stale(self) -> None:
        """Make every entry load again on its next read, keeping its version."""
        for entry in self._entries.values():
            entry.loaded_at = -math.inf

    def _keep(self, key: str, value: V) -> V:
        """Cache `value` unless a newer one is cached; returns the one kept."""
        current = self._entries.get(key)
        if current is None or current.version <= self._version(value):
            self._entries[key] = _Entry(value, self._version(value), time.monotonic())
        return self._entries[key].value

    def listen(self, callback: Callable[[str, V], None]) -> None:
        """Call `callback(key, value)` each time a change notification refreshes a cached key."""
        self._listeners.append(callback)

    async def warm_up(self, keys: Iterable[str]) -> int:
        """Load many keys; returns how many loaded.

        With a `load_many`, chunks of keys are read in one round trip each;
        otherwise a bounded number of single loads run at a time.
        """
        if self._load_many is not None:
            wanted, loaded = list(keys), 0
            for start in range(0, len(wanted), WARM_UP_CHUNK):
                with unavailable_raised():
                    found = await self._load_many(wanted[start : start + WARM_UP_CHUNK])
                for key, value in found.items():
                    self._keep(key, value)
                loaded += len(found)
            return loaded
        gate = asyncio.Semaphore(WARM_UP_CONCURRENCY)

        async def load(key: str) -> V:
            async with gate:
                return await self.refresh(key)

        results = await asyncio.gather(*(load(k) for k in keys), return_exceptions=True)
        return sum(1 for item in results if not isinstance(item, BaseException))

    async def _changed(self, msg: Msg) -> None:
        token = self.subjects.tenant_of(msg.subject)
        if token is None:
            return
        if token == REBUILT:
            self._mark_stale()
            return
        for key in list(self._affected(token, self._entries)):
            if key in self._entries:
                with contextlib.suppress(TenantplaneError):
                    value = await self.refresh(key)
                    for listener in self._listeners:
                        listener(key, value)


class CachedReader(Generic[V]):
    """Base of the SDK clients that read a projection through a `PushCache`."""

    def __init__(
        self, nc: NATS, redis: aioredis.Redis, cache: PushCache[V], *, owns_connections: bool
    ) -> None:
        self.nc = nc
        self.redis = redis
        self.cache = cache
        self._owns = owns_connections

    async def start(self) -> None:
        """Listen for change notifications."""
        await self.cache.start()

    async def close(self) -> None:
        """Stop listening (and close the connections this client opened)."""
        await self.cache.close()
        if self._owns:
            await self.redis.aclose()
            await self.nc.close()
