"""The Redis read-model store: a batch and the checkpoint in one Lua script (on a Redis
Cluster, one per hash tag: `redis_cluster.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence

import redis.asyncio as aioredis
import structlog
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from tenantplane.contracts.keys import Keys
from tenantplane.services.runtime.errors import (
    InvalidRequest,
    InvalidTransition,
    StaleRebuild,
    StoreUnavailable,
)
from tenantplane.services.runtime.stores.base import CommitResult, Position
from tenantplane.services.runtime.stores.redis_cluster import SlotCommits, SlotSwitch
from tenantplane.services.runtime.stores.redis_ops import (
    COMMIT_LUA,
    Arg,
    RedisOp,
    as_text,
    compact,
    delete,
)

log = structlog.get_logger(__name__)

# KEYS: checkpoint, blocked, parked: their values, read at one moment.
_LOAD = """
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('GET', KEYS[3])}
"""

# ARGV: live prefix, shadow prefix, live checkpoint key, shadow checkpoint key, then SCAN
# patterns of the live keys to clear. Deletes the live read model and renames the shadow
# one into its place, in one step; refuses (-1) a shadow behind the live read model (one
# another replica already swapped in, or one not built yet).
_SWAP = """
local shadow = tonumber(redis.call('GET', ARGV[4]) or '-1')
if shadow < tonumber(redis.call('GET', ARGV[3]) or '0') then return -1 end
local function each(pattern, fn)
  local cursor = '0'
  repeat
    local reply = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = reply[1]
    for _, key in ipairs(reply[2]) do fn(key) end
  until cursor == '0'
end
for i = 5, #ARGV do each(ARGV[i], function(key) redis.call('DEL', key) end) end
local moved = 0
each(ARGV[2] .. '*', function(key)
  redis.call('RENAME', key, ARGV[1] .. string.sub(key, #ARGV[2] + 1))
  moved = moved + 1
end)
return moved
"""


class RedisStore:
    """A projection's read model and checkpoint in Redis."""

    kind = "redis"

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        projection: str,
        owns: Sequence[str] = (),
        tenant_owns: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        """`owns`: SCAN patterns of the read-model keys this projection alone writes;
        `tenant_owns`: those of one tenant's keys (needed to rebuild one tenant).

        On a Redis Cluster client, a commit is one guarded write per hash tag and then
        the checkpoint (see `SlotCommits`); on a single Redis, one script does it all.
        """
        self.redis = redis
        self.projection = projection
        self._root = keys.root
        self._owns = tuple(owns)
        self._tenant_owns = tenant_owns
        self._meta = (
            keys.checkpoint(projection),
            keys.blocked(projection),
            keys.parked(projection),
            keys.switching(projection),
        )
        self._keys = keys
        self._guards = keys.applied_all(projection)
        self._slots = (
            SlotCommits(redis, keys, projection) if isinstance(redis, RedisCluster) else None
        )
        self._commit = redis.register_script(COMMIT_LUA)
        self._load = redis.register_script(_LOAD)

    async def load(self) -> Position:
        """The stored checkpoint and blocked subjects.

        Raises:
            StoreUnavailable: Redis cannot be reached, or a rebuilt read model is being
                switched in (on a cluster; a switch whose process died is finished here).
        """
        try:
            if self._slots is not None:
                await self._switched_in()
            checkpoint, blocked, parked = await self._load(keys=list(self._meta[:3]))
        except RedisError as e:
            raise StoreUnavailable(f"cannot read projection position: {e}", server="redis") from e
        return Position(
            checkpoint=int(checkpoint or 0),
            blocked={as_text(k): int(v) for k, v in zip(blocked[::2], blocked[1::2], strict=True)},
            parked=int(parked or 0),
        )

    async def _switched_in(self) -> None:
        switch = SlotSwitch(self)
        fence = await switch.fence()
        if fence is None:
            return
        try:
            moved = await switch.finish(fence)
        except InvalidTransition as e:
            raise StoreUnavailable(
                f"a rebuilt {self.projection} read model is being switched in ({e})",
                server="redis",
            ) from e
        log.warning("projection.switch_finished", projection=self.projection, keys=moved)

    async def commit(
        self,
        expected: int,
        new: int,
        ops: Sequence[RedisOp],
        *,
        block: Mapping[str, int] = {},
        unblock: Sequence[str] = (),
        parked: int = 0,
        events: Sequence[tuple[int, int]] = (),
    ) -> CommitResult:
        """Apply `ops` and move the checkpoint, if it still is `expected`."""
        argv: list[Arg] = [expected, new, parked, len(block), len(unblock)]
        for subject, seq in block.items():
            argv += [subject, seq]
        argv += unblock
        try:
            if self._slots is not None:
                redriven = await self._slots.write(new, ops, events)
                ok, checkpoint = await self._slots.commit_position(self._meta, argv)
                if ok == 1 and redriven:
                    await self._slots.redriven(redriven)
            else:
                for op in compact(ops):
                    argv += [op.command, len(op.args), *op.args]
                ok, checkpoint = await self._commit(keys=list(self._meta), args=argv)
        except RedisError as e:
            raise StoreUnavailable(f"projection commit failed: {e}", server="redis") from e
        return CommitResult(ok=ok == 1, checkpoint=int(checkpoint), switching=ok == 2)

    async def replace_with(self, shadow: RedisStore) -> int:
        """Atomically make `shadow`'s read model and position this store's; returns keys moved.

        Both stores must own the same patterns under different key roots. A
        projector still writing to this store sees its checkpoint move and
        restarts from the new one.

        Raises:
            StaleRebuild: the shadow is behind the live read model (nothing changed).
        """
        if self._slots is not None:
            switch = SlotSwitch(self)
            try:
                return await switch.finish(await switch.start(shadow))
            except RedisError as e:
                raise StoreUnavailable(
                    f"switching to the rebuilt read model stopped (it is finished by the next "
                    f"rebuild or the projector): {e}",
                    server="redis",
                ) from e
        live, other = f"{self._root}:", f"{shadow._root}:"
        patterns = [*self._owns, *self._meta]
        checkpoints = (self._meta[0], shadow._meta[0])
        try:
            moved = await self.redis.eval(_SWAP, 0, live, other, *checkpoints, *patterns)
        except RedisError as e:
            raise StoreUnavailable(
                f"cannot switch to the rebuilt read model: {e}", server="redis"
            ) from e
        if moved == -1:
            raise StaleRebuild("the rebuilt read model is behind the live one; nothing switched")
        return int(moved)

    async def clearing(self, tenant: str | None = None) -> list[RedisOp]:
        """`DEL`s of the keys of one tenant's part of the read model (all for None)."""
        if tenant is None:
            patterns: Sequence[str] = self._owns
        elif self._tenant_owns is None:
            raise InvalidRequest(f"{self.projection} does not say which Redis keys are a tenant's")
        else:
            patterns = self._tenant_owns(tenant)
        try:
            return [
                delete(*(as_text(key) for key in batch))
                for pattern in patterns
                async for batch in _scan_batches(self.redis, pattern)
            ]
        except RedisError as e:
            raise StoreUnavailable(f"cannot list the read model: {e}", server="redis") from e

    async def reset(self) -> None:
        """Delete this projection's read model, checkpoint and blocked subjects."""
        try:
            await self.redis.unlink(*self._meta)
            for pattern in (*self._owns, self._guards):
                async for batch in _scan_batches(self.redis, pattern):
                    await self.redis.unlink(*batch)
        except RedisError as e:
            raise StoreUnavailable(f"cannot reset the read model: {e}", server="redis") from e


# KEYS: hashes of one slot; their fields and values as flat lists, read at one moment.
_READ_HASHES = """
local found = {}
for i, key in ipairs(KEYS) do found[i] = redis.call('HGETALL', key) end
return found
"""


async def read_hashes(
    redis: aioredis.Redis, groups: Sequence[Sequence[str]]
) -> list[list[dict[bytes, bytes]]]:
    """Each group of hashes as read at one moment, every group in one round trip.

    The hashes of a group must share a slot on a Redis Cluster (one tenant's keys,
    one service's routing): a script reads each group, so this works the same on a
    single Redis and on a cluster, where a transaction over many tenants cannot.
    """
    async with redis.pipeline(transaction=False) as pipe:
        for keys in groups:
            pipe.eval(_READ_HASHES, len(keys), *keys)
        replies = await pipe.execute()
    return [[dict(zip(flat[::2], flat[1::2], strict=True)) for flat in reply] for reply in replies]


async def _scan_batches(
    redis: aioredis.Redis, pattern: str, size: int = 500
) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=pattern, count=size):
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
