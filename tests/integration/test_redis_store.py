"""What is particular to the Redis store."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from tenantplane.services.runtime.connections import packed_in_c
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis_ops import (
    OPS_LUA,
    RedisOp,
    compact,
    delete,
    hdel,
    hincrby,
    hold,
    hset,
    own_clear,
    own_hdel,
    own_hset,
    release,
    sadd,
    srem,
)
from tests import servers as test_servers
from tests.support.counting import digest
from tests.support.events import config_set
from tests.support.running import eventually, running
from tests.support.stores import redis_projector

pytestmark = pytest.mark.integration


async def test_checkpoint_lost_with_redis_data_rebuilds_from_the_log(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    first = await event_log.append_many([config_set("acme", n=i) for i in range(20)])
    projector = redis_projector(nc, redis, settings)
    async with running(projector):
        await projector.wait_for(first[-1].seq)
        # When Redis loses the read model and the checkpoint (as a restart without disk would)
        keys = [k async for k in redis.scan_iter(match=f"{settings.namespace}*")]
        await redis.delete(*keys)
        more = await event_log.append(config_set("acme", n=20))

        async def caught_up() -> bool:
            value = await redis.get(settings.keys.checkpoint("counting"))
            return value is not None and int(value) >= more.seq

        await eventually(caught_up)
    # Then the projector noticed the moved checkpoint and replayed everything once
    _, state = await digest(redis, settings.namespace)
    assert state["acme"]["events"] == "21"


KEYS_UNDER_TEST = ["h1", "h2", "s1", "u1", "u2"]
_hashes, _unders = st.sampled_from(["h1", "h2"]), st.sampled_from(["u1", "u2"])
_fields = st.dictionaries(st.sampled_from("abcd"), st.integers(0, 9), min_size=1, max_size=3)
_names = st.lists(st.sampled_from("abcd"), min_size=1, max_size=2)
_ops = st.one_of(
    st.builds(hset, _hashes, _fields),
    st.builds(lambda k, f: hdel(k, *f), _hashes, _names),
    st.builds(hincrby, _hashes, st.sampled_from("abcd"), st.integers(-(2**40), 2**40)),
    st.builds(lambda m: sadd("s1", *m), st.lists(st.sampled_from("xyz"), min_size=1, max_size=2)),
    st.builds(lambda m: srem("s1", *m), st.lists(st.sampled_from("xyz"), min_size=1, max_size=2)),
    st.builds(lambda ks: delete(*ks), st.lists(st.sampled_from(KEYS_UNDER_TEST), min_size=1)),
    # The config projection's ops: a hash whose held fields keep their value in "under".
    st.builds(own_hset, _hashes, _unders, _fields),
    st.builds(lambda k, u, f: own_hdel(k, u, *f), _hashes, _unders, _names),
    st.builds(own_clear, _hashes, _unders),
    st.builds(hold, _hashes, _unders, _fields),
    st.builds(lambda k, u, f: release(k, u, *f), _hashes, _unders, _names),
    st.builds(lambda u, f: hset(u, f), _unders, _fields),
)
_RUN_OPS = OPS_LUA + "\nlocal i = 1\nwhile i <= #ARGV do i = apply_op(i, false) end\n"


@given(ops=st.lists(_ops, max_size=25))
@example(ops=[hset("h2", {"a": 1}), delete("h1", "h2"), hset("h2", {"b": 2})])
@example(
    ops=[
        own_hset("h1", "u1", {"a": 1}),
        hold("h1", "u1", {"a": 5}),
        own_hset("h1", "u1", {"a": 2}),
    ]
)
@example(ops=[own_hset("h1", "u1", {"a": 1}), hset("u1", {"a": 0}), own_hset("h1", "u1", {"a": 2})])
@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_compacted_writes_leave_redis_exactly_as_the_originals(
    ops: list[RedisOp], servers: test_servers.Servers, namespace: str
) -> None:
    """A batch's writes, folded per key, against the writes one by one, on real Redis,
    through the interpreter of ops that commits them."""
    client = redis.Redis.from_url(servers.redis_url)

    def run(prefix: str, batch: list[RedisOp]) -> dict[str, object]:
        keys = {k: f"{namespace}:{prefix}:{k}" for k in KEYS_UNDER_TEST}
        for op in batch:
            args = [keys[str(a)] if i < len(op.keys) else a for i, a in enumerate(op.args)]
            client.eval(_RUN_OPS, 0, op.command, len(args), *args)
        return {
            k: client.smembers(keys[k]) if k == "s1" else client.hgetall(keys[k])
            for k in KEYS_UNDER_TEST
        }

    try:
        assert run("one-by-one", ops) == run("compacted", compact(ops))
        assert len(compact(ops)) <= len(ops)
    finally:
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()


async def test_commands_are_packed_in_c_and_stored_as_redis_py_would_store_them(
    redis: aioredis.Redis, settings: Settings
) -> None:
    pool = redis.connection_pool
    assert pool.connection_class is packed_in_c(Connection)
    key = f"{settings.namespace}:packed"
    values: dict[str, str | bytes | int | float] = {
        "text": "été",
        "bytes": b"\x00\xff",
        "int": 2**63 - 1,
        "neg": -5,
        "float": 0.1,
    }
    await redis.hset(key, mapping=values)  # type: ignore[arg-type]
    fields = [x for pair in values.items() for x in pair]
    python_packed = Connection().pack_command("HSET", key, *fields)
    c_packed = pool.make_connection().pack_command("HSET", key, *fields)  # type: ignore[no-untyped-call]
    assert b"".join(c_packed) == b"".join(python_packed)
    assert await redis.hgetall(key) == {
        b"text": "été".encode(),
        b"bytes": b"\x00\xff",
        b"int": b"9223372036854775807",
        b"neg": b"-5",
        b"float": b"0.1",
    }
    two_words = await redis.execute_command("CONFIG GET", "maxmemory")  # type: ignore[no-untyped-call]
    assert two_words == {"maxmemory": "0"}
    with pytest.raises(DataError, match="bool"):  # what hiredis does not take, redis-py refuses
        await redis.set(key, True)
