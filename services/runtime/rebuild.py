"""Rebuilding a Redis projection from the log without downtime.

A second projector replays everything into a shadow key root while the live
one keeps serving; once the shadow is at the head, one atomic swap puts it in
place (see `RedisStore.replace_with`). Readers see the old read model or the
new one, never a mix; the live projector notices its moved checkpoint and goes
on from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.keys import Keys
from tenantplane.contracts.registry import EventRegistry
from tenantplane.contracts.subjects import REBUILT
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.projector import Projection, Projector
from tenantplane.services.runtime.stores.redis import RedisOp, RedisStore, StaleRebuild

SHADOW_SUFFIX = "~rebuild"
SWITCH_ATTEMPTS = 20
# Events per commit while replaying: a large batch holds many events of each key, so
# its writes fold into few commands (see `compact`), and nobody reads the shadow yet.
REPLAY_BATCH = 10_000


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did."""

    events: int
    keys: int
    seconds: float


class RedisRebuild:
    """Rebuilds one Redis projection, built by `make(keys)` for any key root."""

    def __init__(
        self,
        make: Callable[[Keys], tuple[Projection[RedisOp], list[str]]],
        nc: NATS,
        redis: aioredis.Redis,
        log: EventLog,
        keys: Keys,
        registry: EventRegistry,
    ) -> None:
        self.make, self.nc, self.redis, self.log = make, nc, redis, log
        self.keys, self.registry = keys, registry

    async def run(self, progress: Callable[[int, int], None] | None = None) -> RebuildResult:
        """Replay into the shadow, switch readers to it, and tell them.

        The switch only happens once the shadow is at least as far as the live
        read model, so no reader sees an older state; under traffic the shadow
        catches up again and the switch is retried.
        """
        started = time.monotonic()
        shadow_keys = self.shadow_keys()
        shadow = self._store(shadow_keys)
        await shadow.reset()
        # An explicit 0, so a projection without events yet is swapped in too.
        await shadow.commit(0, 0, [])
        projection, _ = self.make(shadow_keys)
        stream = self.log.subjects.stream_for(projection.filters()[0])
        exists = await self.log.stream_exists(stream)  # a domain's may not exist yet
        head = await self.log.head(stream) if exists else 0
        for _ in range(SWITCH_ATTEMPTS):
            checkpoint = await self._catch_up(projection, shadow, head, progress) if exists else 0
            try:
                moved = await self._store(self.keys).replace_with(shadow)
                break
            except StaleRebuild:
                continue
        else:
            raise StaleRebuild(f"{projection.name}: the live read model kept moving ahead")
        name = projection.name
        await self.nc.publish(self.log.subjects.changes(name, REBUILT), str(head).encode())
        return RebuildResult(checkpoint, moved, time.monotonic() - started)

    async def _catch_up(
        self,
        projection: Projection[RedisOp],
        shadow: RedisStore,
        head: int,
        progress: Callable[[int, int], None] | None,
    ) -> int:
        """Run a projector into the shadow until it has applied what exists; its checkpoint."""
        projector = Projector(
            projection, shadow, self.nc, subjects=self.log.subjects, registry=self.registry,
            max_batch=REPLAY_BATCH, notify=False, control=False,
        )  # fmt: skip
        task = asyncio.create_task(projector.run())
        try:
            # Caught up: it applied every matching event that existed when it subscribed.
            while not projector.stats.caught_up:
                if task.done():
                    await task
                if progress is not None:
                    progress(projector.position.checkpoint, head)
                await asyncio.sleep(0.1)
        finally:
            await projector.stop()
            await task
        return projector.position.checkpoint

    def shadow_keys(self) -> Keys:
        """The key root the rebuild replays into: its own per projection, so rebuilds of
        different projections at once never empty or swap in each other's keys."""
        name = self.make(self.keys)[0].name
        return Keys(f"{self.keys.root}{SHADOW_SUFFIX}-{name}")

    def _store(self, keys: Keys) -> RedisStore:
        projection, owns = self.make(keys)
        return RedisStore(self.redis, keys, projection.name, owns)
