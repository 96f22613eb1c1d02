"""The writes a Redis projection asks for (`RedisOp` and its helpers), how a batch of
them folds into fewer (`compact`), and the Lua that makes them. A single Redis commits
with `COMMIT_LUA`; a Redis Cluster runs the same interpreter of ops slot by slot
(`redis_cluster.py`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

Arg = str | bytes | int | float

# The ops of a commit, in ARGV from index i on, as (command, argc, args...); `apply_op(i)`
# makes one and returns where the next starts.
#
# Besides plain commands, the TP.* ops keep a hash whose fields something else may hold
# on top (a config rollout over a tenant's own values: `held` below). Their first two
# arguments are the hash readers read and its "under" hash: for each held field, the
# value underneath ('' when there is none). A hash with nothing held (no "under" hash)
# takes plain HSET/HDEL, so the common case costs one EXISTS.
OPS_LUA = """
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
COMMIT_LUA = (
    OPS_LUA
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

_HELD = frozenset({"TP.OWNSET", "TP.OWNDEL", "TP.OWNCLEAR", "TP.HOLD", "TP.RELEASE"})
_ALLOWED = frozenset({"HSET", "HDEL", "DEL", "SET", "SADD", "SREM", "INCRBY", "HINCRBY", *_HELD})


class _Op(NamedTuple):
    command: str
    args: tuple[Arg, ...]


class RedisOp(_Op):
    """One Redis write a projection asks for; built with the helpers below.

    A tuple (command, args): a replay makes one or more per event, and a tuple is
    built in a third of a frozen dataclass's time.
    """

    __slots__ = ()

    def __new__(cls, command: str, args: tuple[Arg, ...]) -> RedisOp:
        if command not in _ALLOWED:
            raise ValueError(f"Redis command {command} is not allowed in a projection")
        return _op(command, args)

    @property
    def keys(self) -> tuple[Arg, ...]:
        """The keys this op writes."""
        if self.command == "DEL":
            return self.args
        return self.args[:2] if self.command in _HELD else self.args[:1]


def _op(command: str, args: tuple[Arg, ...]) -> RedisOp:
    """An op of a command known to be allowed (the helpers below), unchecked."""
    return tuple.__new__(RedisOp, (command, args))


def hset(key: str, mapping: Mapping[str, Arg]) -> RedisOp:
    """Set fields of a hash."""
    return _op("HSET", (key, *itertools.chain.from_iterable(mapping.items())))


def hdel(key: str, *fields: str) -> RedisOp:
    """Remove fields of a hash."""
    return _op("HDEL", (key, *fields))


def hincrby(key: str, field: str, amount: int) -> RedisOp:
    """Add `amount` to a field of a hash."""
    return _op("HINCRBY", (key, field, amount))


def delete(*keys: str) -> RedisOp:
    """Remove keys."""
    return _op("DEL", keys)


def sadd(key: str, *members: Arg) -> RedisOp:
    """Add members to a set."""
    return _op("SADD", (key, *members))


def srem(key: str, *members: Arg) -> RedisOp:
    """Remove members from a set."""
    return _op("SREM", (key, *members))


def own_hset(hash_key: str, under: str, mapping: Mapping[str, Arg]) -> RedisOp:
    """Set fields of a hash whose held fields keep their value: the new value of a
    held field goes under it (see `hold`)."""
    return _op("TP.OWNSET", (hash_key, under, *itertools.chain.from_iterable(mapping.items())))


def own_hset_pairs(hash_key: str, under: str, pairs: Iterable[Arg]) -> RedisOp:
    """`own_hset` with the fields and values given flat (field, value, field, ...), for a
    caller that makes them one by one: no mapping in between."""
    return _op("TP.OWNSET", (hash_key, under, *pairs))


def own_hdel(hash_key: str, under: str, *fields: str) -> RedisOp:
    """Remove fields of a hash; a held field keeps its value, with nothing under it."""
    return _op("TP.OWNDEL", (hash_key, under, *fields))


def own_clear(hash_key: str, under: str) -> RedisOp:
    """Remove every field of a hash but the held ones, which keep nothing under them."""
    return _op("TP.OWNCLEAR", (hash_key, under))


def hold(hash_key: str, under: str, mapping: Mapping[str, Arg]) -> RedisOp:
    """Show `mapping`'s values in a hash, keeping what they cover in `under`."""
    return _op("TP.HOLD", (hash_key, under, *itertools.chain.from_iterable(mapping.items())))


def release(hash_key: str, under: str, *fields: str) -> RedisOp:
    """Stop holding fields: what was under them shows again (or they go)."""
    return _op("TP.RELEASE", (hash_key, under, *fields))


_MERGEABLE = frozenset({"HSET", "SADD", "HINCRBY", "TP.OWNSET"})
_MULTIKEY = frozenset({"DEL", *_HELD})  # ops whose `keys` are more than their first arg
_Merged = list[Any]  # [op, folded fields or None, foldable]


def compact(ops: Sequence[RedisOp]) -> list[RedisOp]:
    """The same writes in fewer arguments: an HSET, SADD, HINCRBY or TP.OWNSET folds
    into the previous op on its key when that op is the same command (later HSET and
    TP.OWNSET fields win, HINCRBY amounts of a field add up). A TP.OWNSET folds only
    into one on the same "under" hash that nothing wrote since: which of the two
    hashes a field goes to depends on it, and TP.OWNSET itself never changes that.

    Order per key is kept, and keys are independent inside the atomic commit, so the
    result leaves Redis exactly as the original sequence would. A replay, where one
    batch holds many events of each tenant, sends a fraction of the arguments.
    """
    # Per op kept: the op, the fields folded into it (made when a second op folds in;
    # an op nothing folded into is sent as it is), and whether it may take folds.
    merged: list[_Merged] = []
    last: dict[Arg, int] = {}  # key -> index in `merged` of the last op on it
    for op in ops:
        command, args = op
        if not args:
            merged.append([op, None, False])
            continue
        index = last.get(args[0])
        if index is not None and (into := merged[index])[2]:
            first_command, first_args = into[0]
            if first_command == command and (
                command not in _HELD or (first_args[1] == args[1] and last[args[1]] == index)
            ):
                fields = into[1]
                if fields is None:
                    fields = into[1] = {}
                    _fold(command, first_args, fields)
                if _fold(command, args, fields):
                    continue
        foldable = command in _MERGEABLE and (command != "HINCRBY" or type(args[2]) is int)
        merged.append([op, None, foldable])
        if command in _MULTIKEY:
            for key in op.keys:
                last[key] = len(merged) - 1
        else:
            last[args[0]] = len(merged) - 1
    return [
        unfolded
        for op, fields, _ in merged
        for unfolded in ([op] if fields is None else _unfold(op.command, op.args, fields))
    ]


def _fold(command: str, args: tuple[Arg, ...], fields: dict[Arg, Arg]) -> bool:
    """Add the op's fields to `fields`; False (nothing added) when it cannot be folded."""
    if command == "HINCRBY":  # key field amount: only whole-number amounts add up here
        _, field, amount = args
        total = fields.get(field, 0)
        if type(amount) is not int or type(total) is not int:
            return False
        fields[field] = total + amount
    elif command == "HSET":
        fields.update(zip(args[1::2], args[2::2], strict=True))
    elif command == "TP.OWNSET":  # hash under field value ...
        fields.update(zip(args[2::2], args[3::2], strict=True))
    else:  # SADD
        fields.update((member, b"") for member in args[1:])
    return True


def _unfold(command: str, args: tuple[Arg, ...], fields: dict[Arg, Arg]) -> list[RedisOp]:
    key = args[0]
    if command == "HINCRBY":  # one field per command
        return [_op(command, (key, field, amount)) for field, amount in fields.items()]
    pairs = (item for pair in fields.items() for item in pair)
    if command == "HSET":
        return [_op(command, (key, *pairs))]
    if command == "TP.OWNSET":
        return [_op(command, (key, args[1], *pairs))]
    return [_op(command, (key, *fields))]


def tag_of(key: Arg) -> str:
    """The Redis Cluster hash tag of `key`: the text inside its first {...}, or the
    whole key when there is none (the slot is then the whole key's)."""
    text = key.decode() if isinstance(key, bytes) else str(key)
    left = text.find("{")
    right = text.find("}", left + 1) if left >= 0 else -1
    return text[left + 1 : right] if right > left + 1 else text


def as_text(value: bytes | str) -> str:
    """A Redis reply item as text (clients may be set to decode or not)."""
    return value.decode() if isinstance(value, bytes) else value
