"""The projector kernel against real nats-server and Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from contracts import EVENTS, Keys
from services.runtime.deadletters import DeadLetters
from services.runtime.eventlog import EventLog
from services.runtime.projector import Projector
from services.runtime.settings import Settings
from services.runtime.stores.redis import RedisOp, RedisStore
from tests.support.counting import CountingProjection, digest
from tests.support.events import config_set, registered
from tests.support.running import eventually, running

pytestmark = pytest.mark.integration


def make_projector(
    nc: NATS,
    redis: aioredis.Redis,
    settings: Settings,
    root: str | None = None,
    poison: str | None = None,
    max_batch: int = 1000,
    idle_check_s: float = 1.0,
) -> Projector[RedisOp]:
    root = root or settings.namespace
    projection = CountingProjection(settings.subjects, root, poison_marker=poison)
    store = RedisStore(redis, Keys(root), projection.name, [f"{root}:count:*"])
    return Projector(
        projection,
        store,
        nc,
        subjects=settings.subjects,
        registry=EVENTS,
        max_batch=max_batch,
        idle_check_s=idle_check_s,
    )


async def test_projector_applies_every_event_once(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    # Given events of three tenants
    appended = await event_log.append_many([config_set(f"t{i % 3}", n=i) for i in range(90)])
    projector = make_projector(nc, redis, settings, max_batch=7)
    # When the projector runs to the head
    async with running(projector):
        await projector.wait_for(appended[-1].seq)
    # Then each tenant counted exactly its events
    _, state = await digest(redis, settings.namespace)
    assert {t: int(v["events"]) for t, v in state.items()} == {"t0": 30, "t1": 30, "t2": 30}
    assert sum(int(v["seq_sum"]) for v in state.values()) == sum(range(1, 91))


async def test_restarted_projector_resumes_from_its_checkpoint(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    first = await event_log.append_many([config_set("acme", n=i) for i in range(50)])
    async with running(make_projector(nc, redis, settings)) as projector:
        await projector.wait_for(first[-1].seq)
    second = await event_log.append_many([config_set("acme", n=i) for i in range(50, 80)])
    async with running(make_projector(nc, redis, settings)) as projector:
        await projector.wait_for(second[-1].seq)
    _, state = await digest(redis, settings.namespace)
    assert state["acme"]["events"] == "80"


async def test_two_racing_projectors_never_double_an_effect(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    # Given two projectors of one projection on one store, both running
    a = make_projector(nc, redis, settings, max_batch=5)
    b = make_projector(nc, redis, settings, max_batch=3)
    async with running(a), running(b):
        # When events flow
        appended = await event_log.append_many([config_set("acme", n=i) for i in range(200)])
        await eventually(lambda: _checkpoint(redis, settings, appended[-1].seq))
    # Then the conditional commit let each event take effect exactly once
    _, state = await digest(redis, settings.namespace)
    assert state["acme"]["events"] == "200"
    assert int(state["acme"]["seq_sum"]) == sum(a.seq for a in appended)


async def _checkpoint(redis: aioredis.Redis, settings: Settings, seq: int) -> bool:
    value = await redis.get(settings.keys.checkpoint("counting"))
    return value is not None and int(value) >= seq


async def test_poison_events_are_parked_and_the_rest_goes_on(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    js = nc.jetstream()
    subjects = settings.subjects
    # Given a malformed message, an unknown type, and a failing event among good ones
    await event_log.append(config_set("good", n=1))
    await js.publish(subjects.config("bad"), b"{not json")
    await js.publish(subjects.config("odd"), b'{"type": "x.new", "schema_version": 1, "data": {}}')
    await event_log.append(config_set("good", reason="fail me", n=2))
    # ... and later events on the same subjects as the poisoned ones
    await event_log.append(config_set("bad", n=3))
    await event_log.append(config_set("good", n=4))
    last = await event_log.append(config_set("other", n=5))
    projector = make_projector(nc, redis, settings, poison="fail me")
    # When the projector runs
    async with running(projector):
        await projector.wait_for(last.seq)
    # Then every poison event is parked with its reason, later events of its subject wait
    # behind it, and the other tenants are unaffected
    letters = [d async for d in DeadLetters(js, subjects).list("counting")]
    reasons = {(d.seq, d.reason.split(":")[0]) for d in letters}
    assert reasons == {
        (2, "MalformedMessage"),
        (3, "UnknownEventType"),
        (4, "apply failed"),
        (5, "waits behind parked event 2"),
        (6, "waits behind parked event 4"),
    }
    _, state = await digest(redis, settings.namespace)
    assert state == {"good": {"events": "1", "last_seq": "1", "seq_sum": "1"},
                     "other": {"events": "1", "last_seq": "7", "seq_sum": "7"}}  # fmt: skip
    assert projector.position.parked == 5


async def test_redrive_applies_parked_events_in_order_once_they_apply(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    # Given a tenant whose events were parked behind one that failed
    await event_log.append(config_set("acme", reason="fail me", n=1))
    last = await event_log.append(config_set("acme", n=2))
    failing = make_projector(nc, redis, settings, poison="fail me")
    async with running(failing):
        await failing.wait_for(last.seq)
        # When re-driven while the handler still fails, nothing changes
        still = await failing.redrive()
    assert (still.applied, still.still_parked) == (0, 2)
    # When re-driven after the handler was fixed
    fixed = make_projector(nc, redis, settings)
    async with running(fixed):
        await fixed.wait_for(last.seq)
        done = await fixed.redrive("acme")
        after = await event_log.append(config_set("acme", n=3))
        await fixed.wait_for(after.seq)
    # Then the parked events applied in order, the subject is unblocked, the DLQ is empty
    assert (done.applied, done.still_parked) == (2, 0)
    _, state = await digest(redis, settings.namespace)
    assert state["acme"] == {"events": "3", "last_seq": "3", "seq_sum": "6"}
    assert [d async for d in DeadLetters(nc.jetstream(), settings.subjects).list()] == []


async def test_checkpoint_lost_with_redis_data_rebuilds_from_the_log(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    first = await event_log.append_many([config_set("acme", n=i) for i in range(20)])
    projector = make_projector(nc, redis, settings)
    async with running(projector):
        await projector.wait_for(first[-1].seq)
        # When Redis loses the read model and the checkpoint (as a restart without disk would)
        keys = [k async for k in redis.scan_iter(match=f"{settings.namespace}*")]
        await redis.delete(*keys)
        more = await event_log.append(config_set("acme", n=20))
        await eventually(lambda: _checkpoint(redis, settings, more.seq))
    # Then the projector noticed the moved checkpoint and replayed everything once
    _, state = await digest(redis, settings.namespace)
    assert state["acme"]["events"] == "21"


async def test_live_projection_matches_a_fresh_replay(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    appended = await event_log.append_many(
        [registered(f"t{i}") for i in range(20)]
        + [config_set(f"t{i % 20}", n=i) for i in range(300)]
    )
    live = make_projector(nc, redis, settings, max_batch=11)
    replay = make_projector(nc, redis, settings, root=f"{settings.namespace}-replay")
    async with running(live), running(replay):
        await asyncio.gather(live.wait_for(appended[-1].seq), replay.wait_for(appended[-1].seq))
    assert (await digest(redis, settings.namespace))[0] == (
        await digest(redis, f"{settings.namespace}-replay")
    )[0]
