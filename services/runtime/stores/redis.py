"""The Redis read-model store: batch + checkpoint in one Lua script."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from tenantplane.contracts.keys import Keys
from tenantplane.services.runtime.errors import (
    InvalidRequest,
    InvalidTransition,
    StoreUnavailable,
)
from tenantplane.services.runtime.stores.base import CommitResult, Position

Arg = str | bytes | int | float

# KEYS: checkpoint, blocked, parked.
# ARGV: expected, new, parked delta, #block pairs, #unblock, pairs..., unblocks..., then ops
# as (command, argc, args...). Nothing is written unless the checkpoint matches.
#
# Besides plain commands, the TP.* ops keep a hash whose fields something else may hold
# on top (a config rollout over a tenant's own values: `held` below). Their first two
# arguments are the hash readers read and its "under" hash: for each held field, the
# value underneath ('' when there is none). A hash with nothing held (no "under" hash)
# takes plain HSET/HDEL, so the common case costs one EXISTS.
_COMMIT = """
local function pairs_of(a, argc, fn)
  for j = a + 2, a + argc - 1, 2 do fn(ARGV[j], ARGV[j + 1]) end
end
local function fields_of(a, argc, fn)
  for j = a + 2, a + argc - 1 do fn(ARGV[j]) end
end
local function tp(cmd, a, argc)
  local hash, under = ARGV[a], ARGV[a + 1]
  local plain = redis.call('EXISTS', under) == 0
  if cmd == 'TP.OWNSET' then
    if plain then return redis.call('HSET', hash, unpack(ARGV, a + 2, a + argc - 1)) end
    pairs_of(a, argc, function(f, v)
      redis.call('HSET', redis.call('HEXISTS', under, f) == 1 and under or hash, f, v)
    end)
  elseif cmd == 'TP.OWNDEL' then
    if plain then return redis.call('HDEL', hash, unpack(ARGV, a + 2, a + argc - 1)) end
    fields_of(a, argc, function(f)
      if redis.call('HEXISTS', under, f) == 1 then redis.call('HSET', under, f, '')
      else redis.call('HDEL', hash, f) end
    end)
  elseif cmd == 'TP.OWNCLEAR' then
    if plain then return redis.call('DEL', hash) end
    for _, f in ipairs(redis.call('HKEYS', hash)) do
      if redis.call('HEXISTS', under, f) == 0 then redis.call('HDEL', hash, f) end
    end
    for _, f in ipairs(redis.call('HKEYS', under)) do redis.call('HSET', under, f, '') end
  elseif cmd == 'TP.HOLD' then
    pairs_of(a, argc, function(f, v)
      if redis.call('HEXISTS', under, f) == 0 then
        redis.call('HSET', under, f, redis.call('HGET', hash, f) or '')
      end
      redis.call('HSET', hash, f, v)
    end)
  elseif cmd == 'TP.RELEASE' then
    fields_of(a, argc, function(f)
      local value = redis.call('HGET', under, f)
      if value == '' then redis.call('HDEL', hash, f)
      elseif value then redis.call('HSET', hash, f, value) end
      redis.call('HDEL', under, f)
    end)
  end
end

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
local i = 6
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2
end
for _ = 1, tonumber(ARGV[5]) do
  redis.call('HDEL', KEYS[2], ARGV[i]); i = i + 1
end
while i <= #ARGV do
  local cmd, argc = ARGV[i], tonumber(ARGV[i + 1])
  if string.sub(cmd, 1, 3) == 'TP.' then tp(cmd, i + 2, argc)
  else redis.call(cmd, unpack(ARGV, i + 2, i + 1 + argc)) end
  i = i + 2 + argc
end
if tonumber(ARGV[3]) > 0 then redis.call('INCRBY', KEYS[3], ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[2])
return {1, tonumber(ARGV[2])}
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


class StaleRebuild(InvalidTransition):
    """A rebuilt read model was not swapped in: the live one is further along."""


_HELD = frozenset({"TP.OWNSET", "TP.OWNDEL", "TP.OWNCLEAR", "TP.HOLD", "TP.RELEASE"})
_ALLOWED = frozenset({"HSET", "HDEL", "DEL", "SET", "SADD", "SREM", "INCRBY", "HINCRBY", *_HELD})


@dataclass(frozen=True)
class RedisOp:
    """One Redis write a projection asks for; built with the helpers below."""

    command: str
    args: tuple[Arg, ...]

    def __post_init__(self) -> None:
        if self.command not in _ALLOWED:
            raise ValueError(f"Redis command {self.command} is not allowed in a projection")

    @property
    def keys(self) -> tuple[Arg, ...]:
        """The keys this op writes."""
        if self.command == "DEL":
            return self.args
        return self.args[:2] if self.command in _HELD else self.args[:1]


def hset(key: str, mapping: Mapping[str, Arg]) -> RedisOp:
    """Set fields of a hash."""
    args: list[Arg] = [key]
    for name, value in mapping.items():
        args += [name, value]
    return RedisOp("HSET", tuple(args))


def hdel(key: str, *fields: str) -> RedisOp:
    """Remove fields of a hash."""
    return RedisOp("HDEL", (key, *fields))


def hincrby(key: str, field: str, amount: int) -> RedisOp:
    """Add `amount` to a field of a hash."""
    return RedisOp("HINCRBY", (key, field, amount))


def delete(*keys: str) -> RedisOp:
    """Remove keys."""
    return RedisOp("DEL", keys)


def sadd(key: str, *members: Arg) -> RedisOp:
    """Add members to a set."""
    return RedisOp("SADD", (key, *members))


def srem(key: str, *members: Arg) -> RedisOp:
    """Remove members from a set."""
    return RedisOp("SREM", (key, *members))


def own_hset(hash_key: str, under: str, mapping: Mapping[str, Arg]) -> RedisOp:
    """Set fields of a hash whose held fields keep their value: the new value of a
    held field goes under it (see `hold`)."""
    return RedisOp("TP.OWNSET", (hash_key, under, *(x for pair in mapping.items() for x in pair)))


def own_hdel(hash_key: str, under: str, *fields: str) -> RedisOp:
    """Remove fields of a hash; a held field keeps its value, with nothing under it."""
    return RedisOp("TP.OWNDEL", (hash_key, under, *fields))


def own_clear(hash_key: str, under: str) -> RedisOp:
    """Remove every field of a hash but the held ones, which keep nothing under them."""
    return RedisOp("TP.OWNCLEAR", (hash_key, under))


def hold(hash_key: str, under: str, mapping: Mapping[str, Arg]) -> RedisOp:
    """Show `mapping`'s values in a hash, keeping what they cover in `under`."""
    return RedisOp("TP.HOLD", (hash_key, under, *(x for pair in mapping.items() for x in pair)))


def release(hash_key: str, under: str, *fields: str) -> RedisOp:
    """Stop holding fields: what was under them shows again (or they go)."""
    return RedisOp("TP.RELEASE", (hash_key, under, *fields))


_MERGEABLE = frozenset({"HSET", "SADD", "HINCRBY"})
_Merged = tuple[str, tuple[Arg, ...], dict[Arg, Arg] | None]


def compact(ops: Sequence[RedisOp]) -> list[RedisOp]:
    """The same writes in fewer arguments: an HSET, SADD or HINCRBY folds into the
    previous op on its key when that op is the same command (later HSET fields win,
    HINCRBY amounts of a field add up).

    Order per key is kept, and keys are independent inside the atomic commit, so the
    result leaves Redis exactly as the original sequence would. A replay, where one
    batch holds many events of each tenant, sends a fraction of the arguments.
    """
    merged: list[_Merged] = []
    last: dict[Arg, int] = {}  # key -> index in `merged` of the last op on it
    for op in ops:
        index = last.get(op.args[0]) if op.args else None
        if index is not None and _folds_into(merged[index], op):
            continue
        fields: dict[Arg, Arg] = {}
        foldable = op.command in _MERGEABLE and _fold(op, fields)
        merged.append((op.command, op.args, fields if foldable else None))
        for k in op.keys:
            last[k] = len(merged) - 1
    return [op for entry in merged for op in _unfold(*entry)]


def _folds_into(entry: _Merged, op: RedisOp) -> bool:
    command, _, fields = entry
    return command == op.command and fields is not None and _fold(op, fields)


def _fold(op: RedisOp, fields: dict[Arg, Arg]) -> bool:
    """Add `op`'s fields to `fields`; False (nothing added) when it cannot be folded."""
    rest = op.args[1:]
    if op.command == "HSET":
        fields.update(zip(rest[::2], rest[1::2], strict=True))
    elif op.command == "SADD":
        fields.update((member, b"") for member in rest)
    else:  # HINCRBY key field amount: only whole-number amounts add up here
        field, amount = rest
        total = fields.get(field, 0)
        if not _is_int(amount) or not _is_int(total):
            return False
        fields[field] = int(total) + int(amount)
    return True


def _is_int(value: Arg) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unfold(command: str, args: tuple[Arg, ...], fields: dict[Arg, Arg] | None) -> list[RedisOp]:
    if fields is None:
        return [RedisOp(command, args)]
    key = args[0]
    if command == "HINCRBY":  # one field per command
        return [RedisOp(command, (key, field, amount)) for field, amount in fields.items()]
    if command == "HSET":
        return [RedisOp(command, (key, *(item for pair in fields.items() for item in pair)))]
    return [RedisOp(command, (key, *fields))]


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

        Raises:
            InvalidRequest: `redis` is a Redis Cluster client: a commit (read model and
                checkpoint in one script) spans hash slots, which a cluster refuses.
        """
        if isinstance(redis, RedisCluster):
            raise InvalidRequest(
                f"the {projection} read model cannot be kept on a Redis Cluster yet (its "
                "commits span hash slots): point TENANTPLANE_REDIS_URL at a single Redis"
            )
        self.redis = redis
        self.projection = projection
        self._root = keys.root
        self._owns = tuple(owns)
        self._tenant_owns = tenant_owns
        self._meta = (
            keys.checkpoint(projection),
            keys.blocked(projection),
            keys.parked(projection),
        )
        self._commit = redis.register_script(_COMMIT)

    async def load(self) -> Position:
        """The stored checkpoint and blocked subjects."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(self._meta[0])
                pipe.hgetall(self._meta[1])
                pipe.get(self._meta[2])
                checkpoint, blocked, parked = await pipe.execute()
        except RedisError as e:
            raise StoreUnavailable(f"cannot read projection position: {e}", server="redis") from e
        return Position(
            checkpoint=int(checkpoint or 0),
            blocked={k.decode(): int(v) for k, v in blocked.items()},
            parked=int(parked or 0),
        )

    async def commit(
        self,
        expected: int,
        new: int,
        ops: Sequence[RedisOp],
        *,
        block: Mapping[str, int] = {},
        unblock: Sequence[str] = (),
        parked: int = 0,
    ) -> CommitResult:
        """Apply `ops` and move the checkpoint, if it still is `expected`."""
        argv: list[Arg] = [expected, new, parked, len(block), len(unblock)]
        for subject, seq in block.items():
            argv += [subject, seq]
        argv += unblock
        for op in compact(ops):
            argv += [op.command, len(op.args), *op.args]
        try:
            ok, checkpoint = await self._commit(keys=list(self._meta), args=argv)
        except RedisError as e:
            raise StoreUnavailable(f"projection commit failed: {e}", server="redis") from e
        return CommitResult(ok=bool(ok), checkpoint=int(checkpoint))

    async def replace_with(self, shadow: RedisStore) -> int:
        """Atomically make `shadow`'s read model and position this store's; returns keys moved.

        Both stores must own the same patterns under different key roots. A
        projector still writing to this store sees its checkpoint move and
        restarts from the new one.

        Raises:
            StaleRebuild: the shadow is behind the live read model (nothing changed).
        """
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
            for pattern in self._owns:
                async for batch in _scan_batches(self.redis, pattern):
                    await self.redis.unlink(*batch)
        except RedisError as e:
            raise StoreUnavailable(f"cannot reset the read model: {e}", server="redis") from e


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


def as_text(value: bytes | str) -> str:
    """A Redis reply item as text (clients may be set to decode or not)."""
    return value.decode() if isinstance(value, bytes) else value
