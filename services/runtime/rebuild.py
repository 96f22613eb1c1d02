"""Rebuilding a Redis projection from the log without downtime.

A second projector replays everything into a shadow key root while the live
one keeps serving; once the shadow is at the head, one atomic swap puts it in
place (see `RedisStore.replace_with`). Readers see the old read model or the
new one, never a mix; the live projector notices its moved checkpoint and goes
on from there.

A rebuild can be split into tenant partitions (`partitions.py`): each part
replays the log up to the head of the moment for its tenants alone, in its own
process, into the same shadow with a checkpoint of its own; then the parts'
positions become the shadow's, and the swap goes on as above. Only a
projection whose writes are per tenant (`by_tenant`) can be split so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.keys import Keys
from tenantplane.contracts.registry import EventRegistry
from tenantplane.contracts.subjects import REBUILT
from tenantplane.services.runtime.errors import InvalidRequest, InvalidTransition, StaleRebuild
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.partitions import Partition
from tenantplane.services.runtime.projector import Projection, Projector
from tenantplane.services.runtime.stores.redis import RedisStore
from tenantplane.services.runtime.stores.redis_ops import RedisOp

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
    partitions: int = 1


# Runs one partition of a rebuild up to a sequence into a key root: `replay_partition`
# in this process, or the same in a process of its own (`tenantctl projection rebuild
# --partitions`).
RunPartition = Callable[[Partition, int, Keys], Awaitable[None]]


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

    async def run(
        self,
        progress: Callable[[int, int], None] | None = None,
        *,
        partitions: int = 1,
        run_partition: RunPartition | None = None,
    ) -> RebuildResult:
        """Replay into the shadow, switch readers to it, and tell them.

        The switch only happens once the shadow is at least as far as the live
        read model, so no reader sees an older state; under traffic the shadow
        catches up again and the switch is retried. With `partitions` > 1 the
        replay up to the head of now is split by tenant, each part run by
        `run_partition` (default: one after another in this process).
        """
        started = time.monotonic()
        # On a cluster, a switch an earlier rebuild left half done is finished first.
        await self._store(self.keys).load()
        shadow_keys = self.shadow_keys()
        shadow = self._store(shadow_keys)
        await shadow.reset()
        # An explicit 0, so a projection without events yet is swapped in too.
        await shadow.commit(0, 0, [])
        projection, _ = self.make(shadow_keys)
        stream = self.log.subjects.stream_for(projection.filters()[0])
        exists = await self.log.stream_exists(stream)  # a domain's may not exist yet
        head = await self.log.head(stream) if exists else 0
        if partitions > 1 and exists:
            await self._in_partitions(shadow, shadow_keys, partitions, head, run_partition)
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
        return RebuildResult(checkpoint, moved, time.monotonic() - started, partitions)

    async def _in_partitions(
        self,
        shadow: RedisStore,
        keys: Keys,
        count: int,
        until: int,
        run_partition: RunPartition | None,
    ) -> None:
        """Replay up to `until` in `count` tenant partitions, then give the shadow the
        position they reached together (blocked subjects and parked counts merged)."""
        projection, _ = self.make(keys)
        if not getattr(projection, "by_tenant", False):
            raise InvalidRequest(f"{projection.name} cannot be rebuilt in tenant partitions")
        parts = [Partition(k, count) for k in range(count)]
        stores = [self._store(keys, _part_name(projection.name, p)) for p in parts]
        for store in stores:
            await store.reset()
        run = run_partition or self.replay_partition
        await asyncio.gather(*(run(p, until, keys) for p in parts))
        positions = [await store.load() for store in stores]
        behind = [str(p) for p, at in zip(parts, positions, strict=True) if at.checkpoint != until]
        if behind:
            raise InvalidTransition(f"partitions {', '.join(behind)} did not reach {until}")
        blocked = {s: q for at in positions for s, q in at.blocked.items()}
        parked = sum(at.parked for at in positions)
        await shadow.commit(0, until, [], block=blocked, parked=parked)
        for store in stores:
            await store.reset()

    async def replay_partition(self, partition: Partition, until: int, keys: Keys) -> None:
        """Replay one partition's events up to `until` into the read model at `keys`."""
        projection, _ = self.make(keys)
        store = self._store(keys, _part_name(projection.name, partition))
        reached = await self._catch_up(projection, store, until, None, partition, until)
        if reached < until:  # the partition's last event came before: only the position moves
            await store.commit(reached, until, [])

    async def _catch_up(
        self,
        projection: Projection[RedisOp],
        shadow: RedisStore,
        head: int,
        progress: Callable[[int, int], None] | None,
        partition: Partition | None = None,
        until: int | None = None,
    ) -> int:
        """Run a projector into the shadow until it has applied what exists (or, for one
        `partition`, what exists up to `until`); its checkpoint."""
        projector = Projector(
            projection, shadow, self.nc, subjects=self.log.subjects, registry=self.registry,
            max_batch=REPLAY_BATCH, notify=False, control=False, partition=partition,
            until=until,
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

    def _store(self, keys: Keys, name: str | None = None) -> RedisStore:
        """The store of the projection at `keys` (under another position's `name`: a
        partition's)."""
        projection, owns = self.make(keys)
        return RedisStore(self.redis, keys, name or projection.name, owns if name is None else ())


def _part_name(projection: str, partition: Partition) -> str:
    """The name a partition's position is kept under."""
    return f"{projection}-part{partition.index}"
