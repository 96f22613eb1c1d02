"""The Redis read-model store: batch + checkpoint in one Lua script."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from tenantplane.contracts.keys import Keys
from tenantplane.services.runtime.errors import (
    InvalidRequest,
    InvalidTransition,
    StoreUnavailable,
)
from tenantplane.services.runtime.stores.base import CommitResult, Position

log = structlog.get_logger(__name__)

Arg = str | bytes | int | float

# The ops of a commit, in ARGV from index i on, as (command, argc, args...); `apply_op(i)`
# makes one and returns where the next starts.
#
# Besides plain commands, the TP.* ops keep a hash whose fields something else may hold
# on top (a config rollout over a tenant's own values: `held` below). Their first two
# arguments are the hash readers read and its "under" hash: for each held field, the
# value underneath ('' when there is none). A hash with nothing held (no "under" hash)
# takes plain HSET/HDEL, so the common case costs one EXISTS.
_OPS = """
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
local function apply_op(i, skip)
  local cmd, argc = ARGV[i], tonumber(ARGV[i + 1])
  if skip then
  elseif string.sub(cmd, 1, 3) == 'TP.' then tp(cmd, i + 2, argc)
  else redis.call(cmd, unpack(ARGV, i + 2, i + 1 + argc)) end
  return i + 2 + argc
end
"""

# KEYS: checkpoint, blocked, parked, switching.
# ARGV: expected, new, parked delta, #block pairs, #unblock, pairs..., unblocks..., then ops.
# Nothing is written unless the checkpoint matches and no rebuilt read model is being
# switched in (on a cluster, see `SlotSwitch`): {2, checkpoint} then.
_COMMIT = (
    _OPS
    + """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if redis.call('EXISTS', KEYS[4]) == 1 then return {2, current} end
if current ~= tonumber(ARGV[1]) then return {0, current} end
local i = 6
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2
end
for _ = 1, tonumber(ARGV[5]) do
  redis.call('HDEL', KEYS[2], ARGV[i]); i = i + 1
end
while i <= #ARGV do i = apply_op(i, false) end
if tonumber(ARGV[3]) > 0 then redis.call('INCRBY', KEYS[3], ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[2])
return {1, tonumber(ARGV[2])}
"""
)

# KEYS: checkpoint, blocked, parked: their values, read at one moment.
_LOAD = """
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('GET', KEYS[3])}
"""

# On a Redis Cluster, the writes of one hash tag (one slot), guarded by its `applied`
# sequence. KEYS: the guard. ARGV: the batch's last sequence, then per event: its
# sequence (0: unguarded, always applied), its number of ops, its ops. An event the
# guard has seen is skipped, so a batch retried after a crash (cut differently) applies
# each event once; the guard then holds the batch's last sequence.
_SLOT_COMMIT = (
    _OPS
    + """
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
local i = 2
while i <= #ARGV do
  local seq, count = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local skip = seq ~= 0 and seq <= seen
  i = i + 2
  for _ = 1, count do i = apply_op(i, skip) end
end
if tonumber(ARGV[1]) > seen then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
)

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


class SlotCommits:
    """A projection's commits on a Redis Cluster, where one script cannot span slots.

    The writes of a batch are grouped by hash tag; each group is one script in its
    slot that skips the events its `applied` guard has seen and then moves the guard
    (see `_SLOT_COMMIT`). The groups of each master go in one pipeline, followed by
    `WAIT` for a replica: a write a master acknowledged but did not replicate before
    dying is never taken as done. Only then does the checkpoint move, with the same
    conditional script a single Redis runs (its keys share the projection's tag).

    A crash between the groups and the checkpoint leaves some groups written: the
    batch is read again from the checkpoint and the guards skip what is in. The
    checkpoint says where to resume; the guards make each event count once.
    """

    def __init__(
        self,
        cluster: RedisCluster,
        keys: Keys,
        projection: str,
        *,
        wait_timeout_ms: int = 2000,
    ) -> None:
        self.cluster, self.keys, self.projection = cluster, keys, projection
        self.wait_timeout_ms = wait_timeout_ms
        self._scripts = (_sha1(_SLOT_COMMIT), _sha1(_COMMIT))
        self._loaded: set[str] = set()  # masters that have the scripts
        self._stale = False  # the cluster's layout must be learned again

    async def write(
        self, new: int, ops: Sequence[RedisOp], events: Sequence[tuple[int, int]]
    ) -> None:
        """Apply each group of `ops` in its slot, skipping events a slot has seen."""
        groups: dict[str, list[Arg]] = {}  # hash tag -> the script's ARGV after `new`
        start = 0
        for seq, count in events or [(0, len(ops))]:
            per_tag: dict[str, list[RedisOp]] = {}
            for op in ops[start : start + count]:
                for tag, part in _by_tag(op):
                    per_tag.setdefault(tag, []).append(part)
            start += count
            for tag, tagged in per_tag.items():
                argv = groups.setdefault(tag, [])
                argv += [seq, len(tagged)]
                for op in tagged:
                    argv += [op.command, len(op.args), *op.args]
        by_master: dict[ClusterNode, list[tuple[int, list[str], list[Arg]]]] = {}
        for tag, argv in groups.items():
            guard = self.keys.applied(self.projection, tag)
            calls = by_master.setdefault(await self._master_of(guard), [])
            calls.append((0, [guard], [new, *argv]))
        await asyncio.gather(*(self._run(node, calls) for node, calls in by_master.items()))

    async def commit_position(self, meta: Sequence[str], argv: list[Arg]) -> Any:
        """The conditional checkpoint move of `_COMMIT` (no ops), replicated."""
        return (await self._run(await self._master_of(meta[0]), [(1, list(meta), argv)]))[0]

    async def _master_of(self, key: str) -> ClusterNode:
        """The master serving `key`'s slot."""
        await self.cluster.initialize()  # once: the client learns the layout
        manager = self.cluster.nodes_manager
        if self._stale:
            await manager.initialize()
            self._stale = False
        return manager.get_node_from_slot(self.cluster.keyslot(key))

    async def _run(
        self, node: ClusterNode, calls: Sequence[tuple[int, list[str], list[Arg]]]
    ) -> list[Any]:
        """Run scripts (0: slot commit, 1: position) on one master over one connection,
        then WAIT for its replica; on any error, learn the cluster's layout anew."""
        if node.name not in self._loaded:
            await self._pipeline(node, [("SCRIPT", "LOAD", s) for s in (_SLOT_COMMIT, _COMMIT)])
            self._loaded.add(node.name)
        commands: list[tuple[Arg, ...]] = [
            ("EVALSHA", self._scripts[script], len(keys), *keys, *argv)
            for script, keys, argv in calls
        ]
        replicated = self._has_replica(node)
        if replicated:
            commands.append(("WAIT", 1, self.wait_timeout_ms))
        replies = await self._pipeline(node, commands)
        if replicated and replies.pop() < 1:
            self.forget()
            raise StoreUnavailable(
                f"no replica of Redis node {node.name} acknowledged the {self.projection} "
                f"commit within {self.wait_timeout_ms} ms",
                server="redis",
            )
        return replies

    async def _pipeline(self, node: ClusterNode, commands: Sequence[tuple[Arg, ...]]) -> list[Any]:
        # The node's own pipeline (as the cluster client's pipelines use it): every
        # command on one connection, which WAIT needs to mean "these writes".
        sent = [PipelineCommand(i, *args) for i, args in enumerate(commands)]
        try:
            await node.execute_pipeline(sent)
            failed = next((c.result for c in sent if isinstance(c.result, Exception)), None)
        except (RedisError, OSError) as e:
            failed = e
        if failed is not None:
            self.forget()
            if isinstance(failed, RedisError):
                raise failed
            raise RedisConnectionError(str(failed)) from failed
        return [c.result for c in sent]

    def _has_replica(self, node: ClusterNode) -> bool:
        slots = self.cluster.nodes_manager.slots_cache
        return any(nodes[0].name == node.name and len(nodes) > 1 for nodes in slots.values())

    def forget(self) -> None:
        """Learn the layout again on the next use (after an error: a failover or a
        resharding may have moved slots, a restarted node lost its scripts)."""
        self._loaded.clear()
        self._stale = True


def _sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # how Redis names a script


def _by_tag(op: RedisOp) -> list[tuple[str, RedisOp]]:
    """`op` as writes of one hash tag each (a DEL of keys in several slots is split)."""
    tags = [tag_of(key) for key in op.keys]
    if op.command == "DEL":
        by_tag: dict[str, list[Arg]] = {}
        for tag, key in zip(tags, op.args, strict=True):
            by_tag.setdefault(tag, []).append(key)
        return [(tag, RedisOp("DEL", tuple(keys))) for tag, keys in by_tag.items()]
    if len(set(tags)) != 1:
        raise ValueError(f"{op.command} writes keys of different hash tags: {op.keys}")
    return [(tags[0], op)]


def tag_of(key: Arg) -> str:
    """The Redis Cluster hash tag of `key`: the text inside its first {...}, or the
    whole key when there is none (the slot is then the whole key's)."""
    text = key.decode() if isinstance(key, bytes) else str(key)
    left = text.find("{")
    right = text.find("}", left + 1) if left >= 0 else -1
    return text[left + 1 : right] if right > left + 1 else text


# KEYS: live checkpoint, blocked, parked, switching, alive, then the shadow's checkpoint,
# blocked, parked. ARGV: the switch's fence value, the heartbeat's ms.
# Starts a switch on a cluster: refuses (-1) a shadow behind the live read model, answers
# the fence of a switch under way instead of starting one, else fences the live
# projection (its commits are refused) and moves the shadow's position in.
_FENCE = """
local fence = redis.call('GET', KEYS[4])
if fence then return fence end
if tonumber(redis.call('GET', KEYS[6]) or '-1') < tonumber(redis.call('GET', KEYS[1]) or '0') then
  return -1
end
redis.call('SET', KEYS[4], ARGV[1])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
for i = 1, 3 do
  redis.call('DEL', KEYS[i])
  if redis.call('EXISTS', KEYS[i + 5]) == 1 then redis.call('RENAME', KEYS[i + 5], KEYS[i]) end
end
return ARGV[1]
"""

# KEYS: the tag's `switched` marker, its live keys, its shadow keys (one slot).
# ARGV: #live keys, live prefix, shadow prefix, the switch's fence value.
_SWITCH_TAG = """
local live = tonumber(ARGV[1])
for i = 2, 1 + live do redis.call('DEL', KEYS[i]) end
for i = 2 + live, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], ARGV[2] .. string.sub(KEYS[i], #ARGV[3] + 1))
  end
end
redis.call('SET', KEYS[1], ARGV[4])
return #KEYS - 1 - live
"""

SWITCH_CHUNK = 500  # tags per pipeline while switching
SWITCH_ALIVE_MS = 15_000


class SlotSwitch:
    """Switches a rebuilt read model in on a Redis Cluster, slot by slot.

    No script can rename keys of many slots, so the switch goes in steps, each
    atomic in its slot: fence the live projection and take the shadow's position
    (`_FENCE`); for each hash tag, delete the live keys and rename the shadow's in
    (`_SWITCH_TAG`, marking the tag as switched); delete the live keys of tags the
    shadow does not have; lift the fence. Readers see each tenant's keys old or new,
    never a mix. The fenced projector commits nothing, and what its last batches
    wrote to some tags is either replaced or guarded: once the fence is lifted it
    goes on from the shadow's checkpoint and the guards count each event once.

    A switch cut short (its process died: the heartbeat expired) is finished by the
    next one to look, the projector included: every step can be run again, and the
    markers tell a tag switched in by this switch from one the shadow never had.
    """

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.keys, self.projection = store._keys, store.projection

    async def start(self, shadow: RedisStore) -> str:
        """Fence the live read model and move the shadow's position in; the fence.

        Raises:
            StaleRebuild: the shadow is behind the live read model (nothing changed).
            InvalidTransition: another switch is under way (its process is alive).
        """
        fence = f"{shadow._root} {uuid.uuid4().hex}"
        keys = [*self.store._meta, self.keys.switching_alive(self.projection), *shadow._meta[:3]]
        found = await self.store.redis.eval(_FENCE, len(keys), *keys, fence, SWITCH_ALIVE_MS)
        if found == -1:
            raise StaleRebuild("the rebuilt read model is behind the live one; nothing switched")
        if as_text(found) != fence:
            if await self.alive():
                raise InvalidTransition(f"{self.projection}: another rebuild is being switched in")
            return as_text(found)
        return fence

    async def alive(self) -> bool:
        """Whether the process switching a rebuilt read model in is still at it."""
        return bool(await self.store.redis.exists(self.keys.switching_alive(self.projection)))

    async def fence(self) -> str | None:
        """The fence of a switch under way, if there is one."""
        found = await self.store.redis.get(self.keys.switching(self.projection))
        return None if found is None else as_text(found)

    async def finish(self, fence: str) -> int:
        """Run (or run again) every step after the fence; returns the keys moved."""
        redis, live_root = self.store.redis, self.store._root
        shadow_root = fence.split(" ", 1)[0]
        live, shadow = f"{live_root}:", f"{shadow_root}:"
        owned = [*self.store._owns, self.store._guards]
        incoming, present, switched = await self._by_tag(
            [[f"{shadow_root}:*"], owned, [self.keys.switched_all(self.projection)]]
        )
        for tag, names in incoming.items():
            for name in names:
                if tag_of(live + name[len(shadow) :]) != tag:
                    raise InvalidRequest(
                        f"{name} has no hash tag, so it cannot be renamed into place on a "
                        "Redis Cluster: name the keys of a projection with one (contracts/keys.py)"
                    )
        moved = 0
        tags = list(incoming)
        for start in range(0, len(tags), SWITCH_CHUNK):
            async with redis.pipeline(transaction=False) as pipe:
                for tag in tags[start : start + SWITCH_CHUNK]:
                    old, new = present.get(tag, []), incoming[tag]
                    marker = self.keys.switched(self.projection, tag)
                    keys = [marker, *old, *new]
                    pipe.eval(_SWITCH_TAG, len(keys), *keys, len(old), live, shadow, fence)
                moved += sum(await pipe.execute())
            await redis.set(self.keys.switching_alive(self.projection), "1", px=SWITCH_ALIVE_MS)
        gone: list[list[str]] = []
        for tag, names in present.items():
            if tag in incoming:
                continue
            markers = switched.get(tag)
            if markers and await redis.get(markers[0]) == fence.encode():
                continue  # switched in by this switch before it was cut short
            gone.append(names)  # the shadow has none of this tag
        await _unlink_by_tag(redis, gone)
        await redis.delete(
            self.keys.switching(self.projection), self.keys.switching_alive(self.projection)
        )
        [left] = await self._by_tag([[self.keys.switched_all(self.projection)]])
        await _unlink_by_tag(redis, list(left.values()))
        return moved

    async def _by_tag(self, groups: Sequence[Sequence[str]]) -> list[dict[str, list[str]]]:
        """The keys matching each group of patterns, by hash tag, in one SCAN of the
        keys under the patterns' common prefix (a SCAN reads every key of a node)."""
        found: list[dict[str, list[str]]] = [{} for _ in groups]
        patterns = [p for group in groups for p in group]
        fixed = [re.split(r"[*?\[]", p, maxsplit=1)[0] for p in patterns]
        prefix = os.path.commonprefix(fixed)  # noqa: RUF071 - of key names, not paths
        async for key in self.store.redis.scan_iter(match=f"{prefix}*", count=1000):
            name = as_text(key)
            for index, group in enumerate(groups):
                if any(fnmatch.fnmatchcase(name, p) for p in group):
                    found[index].setdefault(tag_of(name), []).append(name)
        return found


async def _unlink_by_tag(redis: aioredis.Redis, groups: Sequence[Sequence[str]]) -> None:
    """Unlink keys given as groups of one hash tag each, many groups per round trip."""
    for start in range(0, len(groups), SWITCH_CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for names in groups[start : start + SWITCH_CHUNK]:
                pipe.execute_command("UNLINK", *names)  # one slot: no split needed
            await pipe.execute()


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
        self._commit = redis.register_script(_COMMIT)
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
        if await switch.alive():
            raise StoreUnavailable(
                f"a rebuilt {self.projection} read model is being switched in", server="redis"
            )
        log.warning("projection.switch_resumed", projection=self.projection, fence=fence)
        await switch.finish(fence)

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
                await self._slots.write(new, ops, events)
                ok, checkpoint = await self._slots.commit_position(self._meta, argv)
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


def as_text(value: bytes | str) -> str:
    """A Redis reply item as text (clients may be set to decode or not)."""
    return value.decode() if isinstance(value, bytes) else value
