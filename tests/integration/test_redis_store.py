"""What is particular to the Redis store."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis_ops import (
    RedisOp,
    compact,
    delete,
    hdel,
    hincrby,
    hset,
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


KEYS_UNDER_TEST = ["h1", "h2", "s1"]
_ops = st.one_of(
    st.builds(
        lambda k, f: hset(k, f),
        st.sampled_from(["h1", "h2"]),
        st.dictionaries(st.sampled_from("abcd"), st.integers(0, 9), min_size=1, max_size=3),
    ),
    st.builds(
        lambda k, f: hdel(k, *f),
        st.sampled_from(["h1", "h2"]),
        st.lists(st.sampled_from("abcd"), min_size=1, max_size=2),
    ),
    st.builds(
        hincrby,
        st.sampled_from(["h1", "h2"]),
        st.sampled_from("abcd"),
        st.integers(-(2**40), 2**40),
    ),
    st.builds(lambda m: sadd("s1", *m), st.lists(st.sampled_from("xyz"), min_size=1, max_size=2)),
    st.builds(lambda m: srem("s1", *m), st.lists(st.sampled_from("xyz"), min_size=1, max_size=2)),
    st.builds(lambda ks: delete(*ks), st.lists(st.sampled_from(KEYS_UNDER_TEST), min_size=1)),
)


@given(ops=st.lists(_ops, max_size=25))
@example(ops=[hset("h2", {"a": 1}), delete("h1", "h2"), hset("h2", {"b": 2})])
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_compacted_writes_leave_redis_exactly_as_the_originals(
    ops: list[RedisOp], servers: test_servers.Servers, namespace: str
) -> None:
    """A batch's writes, folded per key, against the writes one by one, on real Redis."""
    client = redis.Redis.from_url(servers.redis_url)

    def run(prefix: str, batch: list[RedisOp]) -> dict[str, object]:
        keys = {k: f"{namespace}:{prefix}:{k}" for k in KEYS_UNDER_TEST}
        for op in batch:
            touched = op.args if op.command == "DEL" else op.args[:1]
            renamed = [keys[str(k)] for k in touched]
            client.execute_command(op.command, *renamed, *op.args[len(touched) :])  # type: ignore[no-untyped-call]
        return {
            "h1": client.hgetall(keys["h1"]),
            "h2": client.hgetall(keys["h2"]),
            "s1": client.smembers(keys["s1"]),
        }

    try:
        assert run("one-by-one", ops) == run("compacted", compact(ops))
        assert len(compact(ops)) <= len(ops)
    finally:
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()
