"""Projections on a Redis Cluster: a commit as one guarded script per hash tag
(`SlotCommits`), and a rebuilt read model switched in slot by slot (`SlotSwitch`).

Why and how, with the guarantees: docs/operations.md, "Which Redis".
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import os
import re
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from tenantplane.contracts.keys import Keys
from tenantplane.services.runtime.errors import (
    InvalidRequest,
    InvalidTransition,
    StaleRebuild,
    StoreUnavailable,
)
from tenantplane.services.runtime.stores.base import CLEARED
from tenantplane.services.runtime.stores.redis_ops import (
    COMMIT_LUA,
    OPS_LUA,
    Arg,
    RedisOp,
    as_text,
    tag_of,
)

if TYPE_CHECKING:
    from tenantplane.services.runtime.stores.redis import RedisStore

# On a Redis Cluster, the writes of one hash tag (one slot), guarded by its `applied`
# sequence. KEYS: the guard, the tag's `redriven` set. ARGV: the batch's last sequence,
# then per event: its sequence (0: unguarded, always applied; negative: a dead letter
# re-driven, applied once per re-drive; 'cleared': a rebuild's clearing), its number of
# ops, its ops. An event the guard has seen is skipped, so a batch retried after a
# crash (cut differently) applies each event once; the guard then holds the batch's
# last sequence. A re-driven event is older than the guard, so its own record is the
# `redriven` set (emptied once the re-drive has unblocked its subject). A rebuild in
# place rewrites the tag as of the rebuilt position: its guard and `redriven` set are
# forgotten and the guard ends there (writes a failed batch left above it are gone, so
# the projector applies those events again).
_SLOT_COMMIT = (
    OPS_LUA
    + """
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
local cleared = false
local i = 2
while i <= #ARGV do
  local head, count = ARGV[i], tonumber(ARGV[i + 1])
  local skip = false
  if head == 'cleared' then
    seen, cleared = 0, true
    redis.call('DEL', KEYS[2])
  else
    local seq = tonumber(head)
    if seq < 0 then skip = redis.call('SADD', KEYS[2], -seq) == 0
    else skip = seq ~= 0 and seq <= seen end
  end
  i = i + 2
  for _ = 1, count do i = apply_op(i, skip) end
end
if cleared or tonumber(ARGV[1]) > seen then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
)


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
        self._scripts = (_sha1(_SLOT_COMMIT), _sha1(COMMIT_LUA))
        self._loaded: set[str] = set()  # masters that have the scripts
        self._stale = False  # the cluster's layout must be learned again
        self._replicated: set[str] | None = None  # the masters that have a live replica
        self._learned = 0.0  # when the layout was last learned (time.monotonic)

    async def write(
        self, new: int, ops: Sequence[RedisOp], events: Sequence[tuple[int, int]]
    ) -> dict[str, list[int]]:
        """Apply each group of `ops` in its slot, skipping events a slot has seen;
        returns the sequences of re-driven events by hash tag (for `redriven`)."""
        groups: dict[str, list[Arg]] = {}  # hash tag -> the script's ARGV after `new`
        redriven: dict[str, list[int]] = {}
        start = 0
        for seq, count in events or [(0, len(ops))]:
            per_tag: dict[str, list[RedisOp]] = {}
            for op in ops[start : start + count]:
                for tag, part in _by_tag(op):
                    per_tag.setdefault(tag, []).append(part)
            start += count
            for tag, tagged in per_tag.items():
                if CLEARED < seq < 0:
                    redriven.setdefault(tag, []).append(-seq)
                argv = groups.setdefault(tag, [])
                argv += ["cleared" if seq == CLEARED else seq, len(tagged)]
                for op in tagged:
                    argv += [op.command, len(op.args), *op.args]
        by_master: dict[ClusterNode, list[tuple[int, list[str], list[Arg]]]] = {}
        for tag, argv in groups.items():
            keys = [
                self.keys.applied(self.projection, tag),
                self.keys.redriven(self.projection, tag),
            ]
            calls = by_master.setdefault(await self._master_of(keys[0]), [])
            calls.append((0, keys, [new, *argv]))
        await asyncio.gather(*(self._run(node, calls) for node, calls in by_master.items()))
        return redriven

    async def redriven(self, applied: dict[str, list[int]]) -> None:
        """Forget the re-driven sequences of a re-drive whose subject is unblocked."""
        for tag, seqs in applied.items():
            await self.cluster.srem(self.keys.redriven(self.projection, tag), *seqs)

    async def commit_position(self, meta: Sequence[str], argv: list[Arg]) -> Any:
        """The conditional checkpoint move of `COMMIT_LUA` (no ops), replicated."""
        return (await self._run(await self._master_of(meta[0]), [(1, list(meta), argv)]))[0]

    async def _master_of(self, key: str) -> ClusterNode:
        """The master serving `key`'s slot."""
        await self.cluster.initialize()  # once: the client learns the layout
        manager = self.cluster.nodes_manager
        # A cluster seen without replicas is looked at again now and then: its
        # replicas may still have been joining when the layout was first learned.
        unreplicated = not self._replicated and time.monotonic() - self._learned > 5.0
        if self._stale or self._replicated is None or unreplicated:
            if self._stale or unreplicated:
                await manager.initialize()
            self._stale, self._learned = False, time.monotonic()
            self._replicated = {
                nodes[0].name for nodes in manager.slots_cache.values() if len(nodes) > 1
            }
        return manager.get_node_from_slot(self.cluster.keyslot(key))

    async def _run(
        self, node: ClusterNode, calls: Sequence[tuple[int, list[str], list[Arg]]]
    ) -> list[Any]:
        """Run scripts (0: slot commit, 1: position) on one master over one connection,
        then WAIT for its replica; on any error, learn the cluster's layout anew."""
        if node.name not in self._loaded:
            await self._pipeline(node, [("SCRIPT", "LOAD", s) for s in (_SLOT_COMMIT, COMMIT_LUA)])
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
        """Whether a commit on `node` waits for a replica: whenever the cluster has
        replicas. A master left without one (its replica failed, or it is a replica
        promoted when its master failed) refuses commits until it has one again."""
        if not self._replicated:
            return False  # a cluster without replicas: nothing to wait for
        if node.name not in self._replicated:
            self.forget()
            raise StoreUnavailable(
                f"Redis node {node.name} has no live replica: the {self.projection} commits "
                "wait until it has one again (a write only its master holds is one crash "
                "from loss)",
                server="redis",
            )
        return True

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


# KEYS: live checkpoint, blocked, parked, switching, alive, then the shadow's checkpoint,
# blocked, parked. ARGV: the switch's fence value, its owner, the heartbeat's ms.
# Starts a switch on a cluster: refuses (-1) a shadow behind the live read model, answers
# the fence of a switch under way instead of starting one, else fences the live
# projection (its commits are refused), takes the heartbeat and moves the shadow's
# position in. The fence ends with the rebuilt position (`finish` needs it even once
# the fence is lifted and the projector has moved on).
_FENCE = """
local fence = redis.call('GET', KEYS[4])
if fence then return fence end
local rebuilt = tonumber(redis.call('GET', KEYS[6]) or '-1')
if rebuilt < tonumber(redis.call('GET', KEYS[1]) or '0') then
  return -1
end
fence = ARGV[1] .. ' ' .. rebuilt
redis.call('SET', KEYS[4], fence)
redis.call('SET', KEYS[5], ARGV[2], 'PX', ARGV[3])
for i = 1, 3 do
  redis.call('DEL', KEYS[i])
  if redis.call('EXISTS', KEYS[i + 5]) == 1 then redis.call('RENAME', KEYS[i + 5], KEYS[i]) end
end
return fence
"""

# KEYS: switching, alive (one slot). ARGV: the fence, the owner, the heartbeat's ms.
# Takes (or keeps) the heartbeat of the switch behind `fence`: 1 when the owner holds it,
# -1 when another process does, 0 when that switch is over.
_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: switching, alive. ARGV: the fence, the owner. Lifts the fence, if the owner
# still holds the heartbeat (1); else changes nothing (0).
_LIFT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""

# KEYS: the tag's `switched` marker, its live keys, its shadow keys (one slot).
# ARGV: #live keys, live prefix, shadow prefix, the switch's fence, the marker's ms.
# A tag this switch has already swapped (its marker holds the fence) is left alone, so
# two processes finishing one switch cannot delete what the first swapped in.
_SWITCH_TAG = """
if redis.call('GET', KEYS[1]) == ARGV[4] then return 0 end
local live = tonumber(ARGV[1])
for i = 2, 1 + live do redis.call('DEL', KEYS[i]) end
for i = 2 + live, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], ARGV[2] .. string.sub(KEYS[i], #ARGV[3] + 1))
  end
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
return #KEYS - 1 - live
"""

# KEYS: the tag's `switched` marker, its `applied` guard, its live keys (one slot).
# ARGV: the switch's fence, the rebuilt position. Deletes the keys of a tag the rebuild
# does not have, unless this switch swapped the tag in or the projector has written it
# since the rebuilt position (after the fence was lifted).
_STRAY = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') > tonumber(ARGV[2]) then return 0 end
return redis.call('UNLINK', unpack(KEYS, 3))
"""

SWITCH_CHUNK = 500  # tags per pipeline while switching
_Call = tuple[str, list[str], list[Arg]]  # a script of one hash tag: script, KEYS, ARGV
SWITCH_ALIVE_MS = 15_000
# How long a tag's `switched` marker outlives its swap: longer than any switch runs, so
# a late process finishing the same switch still finds it. Markers are never deleted
# by a switch (a process finishing it late would then take a swapped tag for a stray).
SWITCHED_MS = 24 * 3600 * 1000


class SlotSwitch:
    """Switches a rebuilt read model in on a Redis Cluster, slot by slot.

    No script can rename keys of many slots, so the switch goes in steps, each
    atomic in its slot: fence the live projection and take the shadow's position
    (`_FENCE`); for each hash tag, delete the live keys and rename the shadow's in
    (`_SWITCH_TAG`, marking the tag as switched); delete the live keys of tags the
    shadow does not have (`_STRAY`); lift the fence (`_LIFT`). Readers see each
    tenant's keys old or new, never a mix. The fenced projector commits nothing, and
    what its last batches wrote to some tags is either replaced or guarded: once the
    fence is lifted it goes on from the shadow's checkpoint and the guards count each
    event once.

    One process at a time holds a switch's heartbeat (`_CLAIM`, renewed every round
    of tags). A switch cut short (its process died: the heartbeat expired) is
    finished by the next one to look, the projector included: every step can be run
    again, and the markers tell a tag swapped in by this switch from one the shadow
    never had, even to a process that lost the heartbeat while it stalled.
    """

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.keys, self.projection = store._keys, store.projection
        self.owner = uuid.uuid4().hex
        self._heartbeat = (
            self.keys.switching(self.projection),
            self.keys.switching_alive(self.projection),
        )

    async def start(self, shadow: RedisStore) -> str:
        """Fence the live read model and move the shadow's position in; the fence.

        Raises:
            StaleRebuild: the shadow is behind the live read model (nothing changed).
        """
        fence = f"{shadow._root} {uuid.uuid4().hex}"
        keys = [*self.store._meta, self._heartbeat[1], *shadow._meta[:3]]
        found = await self.store.redis.eval(
            _FENCE, len(keys), *keys, fence, self.owner, SWITCH_ALIVE_MS
        )
        if found == -1:
            raise StaleRebuild("the rebuilt read model is behind the live one; nothing switched")
        return as_text(found)  # or another switch's: `finish` takes it over, if it can

    async def fence(self) -> str | None:
        """The fence of a switch under way, if there is one."""
        found = await self.store.redis.get(self._heartbeat[0])
        return None if found is None else as_text(found)

    async def finish(self, fence: str) -> int:
        """Run (or run again) every step after the fence; returns the keys moved.

        Raises:
            InvalidTransition: another process is switching this read model in (it
                holds the heartbeat), or took the switch over while this one stalled.
        """
        await self._beat(fence)
        redis, live_root = self.store.redis, self.store._root
        shadow_root, *_, rebuilt = fence.split(" ")  # see `_FENCE`
        live, shadow = f"{live_root}:", f"{shadow_root}:"
        owned = [*self.store._owns, self.store._guards]
        incoming, present = await self._by_tag([[f"{shadow_root}:*"], owned])
        for tag, names in incoming.items():
            for name in names:
                if tag_of(live + name[len(shadow) :]) != tag:
                    raise InvalidRequest(
                        f"{name} has no hash tag, so it cannot be renamed into place on a "
                        "Redis Cluster: name the keys of a projection with one (contracts/keys.py)"
                    )
        swaps: list[_Call] = []
        for tag, new in incoming.items():
            old = present.get(tag, [])
            keys = [self.keys.switched(self.projection, tag), *old, *new]
            swaps.append((_SWITCH_TAG, keys, [len(old), live, shadow, fence, SWITCHED_MS]))
        moved = int(sum(await self._in_rounds(fence, swaps)))
        strays: list[_Call] = []
        for tag, old in present.items():
            if tag not in incoming:  # the rebuild has none of this tag
                marker = self.keys.switched(self.projection, tag)
                guard = self.keys.applied(self.projection, tag)
                strays.append((_STRAY, [marker, guard, *old], [fence, rebuilt]))
        await self._in_rounds(fence, strays)
        if not await redis.eval(_LIFT, 2, *self._heartbeat, fence, self.owner):
            raise InvalidTransition(f"{self.projection}: another process took this switch over")
        return moved

    async def _in_rounds(self, fence: str, calls: Sequence[_Call]) -> list[Any]:
        """Run scripts, each `(script, keys, argv)` of one hash tag, `SWITCH_CHUNK` per
        pipeline, renewing the heartbeat after each round; their replies."""
        replies: list[Any] = []
        for start in range(0, len(calls), SWITCH_CHUNK):
            async with self.store.redis.pipeline(transaction=False) as pipe:
                for script, keys, argv in calls[start : start + SWITCH_CHUNK]:
                    pipe.eval(script, len(keys), *keys, *argv)
                replies += await pipe.execute()
            await self._beat(fence)
        return replies

    async def _beat(self, fence: str) -> None:
        """Take or renew the switch's heartbeat, or stop: another process holds it."""
        held = await self.store.redis.eval(
            _CLAIM, 2, *self._heartbeat, fence, self.owner, SWITCH_ALIVE_MS
        )
        if held == -1:
            raise InvalidTransition(f"{self.projection}: another rebuild is being switched in")
        if held == 0:
            raise InvalidTransition(
                f"{self.projection}: the switch was finished by another process"
            )

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
