"""The projector kernel's contract, on every read-model store (Redis, SQLite, PostgreSQL,
memory)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from nats.aio.client import Client as NATS

from tenantplane.services.runtime.deadletters import DeadLetters
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tests.support.events import config_set, registered
from tests.support.running import running
from tests.support.stores import Harness

pytestmark = pytest.mark.integration


def events_of(state: dict[str, dict[str, str]]) -> dict[str, int]:
    return {tenant: int(fields["events"]) for tenant, fields in state.items()}


async def test_projector_applies_every_event_once(harness: Harness, event_log: EventLog) -> None:
    # Given events of three tenants
    appended = await event_log.append_many([config_set(f"t{i % 3}", n=i) for i in range(90)])
    projector = harness.projector(max_batch=7)
    # When the projector runs to the head
    async with running(projector):
        await projector.wait_for(appended[-1].seq)
    # Then each tenant counted exactly its events
    _, state = await harness.digest()
    assert events_of(state) == {"t0": 30, "t1": 30, "t2": 30}
    assert sum(int(v["seq_sum"]) for v in state.values()) == sum(range(1, 91))


async def test_idle_projector_stops_without_waiting_out_its_idle_check(
    harness: Harness, event_log: EventLog
) -> None:
    # Given a projector caught up and idle, checking in only every 30 s
    appended = await event_log.append(config_set("acme", n=1))
    projector = harness.projector(idle_check_s=30.0)
    task = asyncio.create_task(projector.run())
    await projector.wait_for(appended.seq)
    # When it is stopped
    await projector.stop()
    # Then it returns at once
    await asyncio.wait_for(task, 2.0)


async def test_restarted_projector_resumes_from_its_checkpoint(
    harness: Harness, event_log: EventLog
) -> None:
    first = await event_log.append_many([config_set("acme", n=i) for i in range(50)])
    async with running(harness.projector()) as projector:
        await projector.wait_for(first[-1].seq)
    second = await event_log.append_many([config_set("acme", n=i) for i in range(50, 80)])
    async with running(harness.projector()) as projector:
        await projector.wait_for(second[-1].seq)
    _, state = await harness.digest()
    assert events_of(state) == {"acme": 80}


async def test_two_racing_projectors_never_double_an_effect(
    harness: Harness, event_log: EventLog
) -> None:
    # Given two projectors of one projection on one store, both running
    a, b = harness.projector(max_batch=5), harness.projector(max_batch=3)
    async with running(a), running(b):
        # When events flow
        appended = await event_log.append_many([config_set("acme", n=i) for i in range(200)])
        await asyncio.gather(a.wait_for(appended[-1].seq, 20), b.wait_for(appended[-1].seq, 20))
    # Then the conditional commit let each event take effect exactly once
    _, state = await harness.digest()
    assert events_of(state) == {"acme": 200}
    assert int(state["acme"]["seq_sum"]) == sum(x.seq for x in appended)


async def test_poison_events_are_parked_and_the_rest_goes_on(
    harness: Harness, nc: NATS, settings: Settings, event_log: EventLog
) -> None:
    js, subjects = nc.jetstream(), settings.subjects
    # Given a malformed message, an unknown type, and a failing event among good ones
    await event_log.append(config_set("good", n=1))
    await js.publish(subjects.config("bad"), b"{not json")
    await js.publish(subjects.config("odd"), b'{"type": "x.new", "schema_version": 1, "data": {}}')
    await event_log.append(config_set("good", reason="fail me", n=2))
    # ... and later events on the same subjects as the poisoned ones
    await event_log.append(config_set("bad", n=3))
    await event_log.append(config_set("good", n=4))
    last = await event_log.append(config_set("other", n=5))
    projector = harness.projector(poison="fail me")
    # When the projector runs
    async with running(projector):
        await projector.wait_for(last.seq)
    # Then every poison event is parked with its reason, later events of its subject wait
    # behind it, and the other tenants are unaffected
    letters = [d async for d in DeadLetters(js, subjects).list("counting")]
    assert {(d.seq, d.reason.split(":")[0]) for d in letters} == {
        (2, "MalformedMessage"),
        (3, "UnknownEventType"),
        (4, "apply failed"),
        (5, "waits behind parked event 2"),
        (6, "waits behind parked event 4"),
    }
    _, state = await harness.digest()
    assert state == {
        "good": {"events": "1", "last_seq": "1", "seq_sum": "1"},
        "other": {"events": "1", "last_seq": "7", "seq_sum": "7"},
    }
    assert projector.position.parked == 5
    assert set(projector.position.blocked) == {subjects.config("bad"), subjects.config("odd"),
                                               subjects.config("good")}  # fmt: skip


async def test_redrive_applies_parked_events_in_order_once_they_apply(
    harness: Harness, nc: NATS, settings: Settings, event_log: EventLog
) -> None:
    # Given a tenant whose events were parked behind one that failed
    await event_log.append(config_set("acme", reason="fail me", n=1))
    last = await event_log.append(config_set("acme", n=2))
    failing = harness.projector(poison="fail me")
    async with running(failing):
        await failing.wait_for(last.seq)
        # When re-driven while the handler still fails, nothing changes
        still = await failing.redrive()
    assert (still.applied, still.still_parked) == (0, 2)
    # When re-driven after the handler was fixed
    fixed = harness.projector()
    async with running(fixed):
        await fixed.wait_for(last.seq)
        done = await fixed.redrive("acme")
        after = await event_log.append(config_set("acme", n=3))
        await fixed.wait_for(after.seq)
    # Then the parked events applied in order, the subject is unblocked, the DLQ is empty
    assert (done.applied, done.still_parked) == (2, 0)
    _, state = await harness.digest()
    assert state["acme"] == {"events": "3", "last_seq": "3", "seq_sum": "6"}
    assert [d async for d in DeadLetters(nc.jetstream(), settings.subjects).list()] == []
    assert fixed.position.blocked == {}


async def test_live_projection_matches_a_fresh_replay(
    harness: Harness, event_log: EventLog
) -> None:
    appended = await event_log.append_many(
        [registered(f"t{i}") for i in range(20)]
        + [config_set(f"t{i % 20}", n=i) for i in range(300)]
    )
    live, replay = harness.projector(max_batch=11), harness.projector("replay")
    async with running(live), running(replay):
        await asyncio.gather(live.wait_for(appended[-1].seq), replay.wait_for(appended[-1].seq))
    assert (await harness.digest())[0] == (await harness.digest("replay"))[0]


async def test_a_running_projector_redrives_on_request(
    harness: Harness, nc: NATS, event_log: EventLog, settings: Settings
) -> None:
    last = await harness.parked(event_log)
    async with running(harness.projector()) as fixed:
        await fixed.wait_for(last)
        subject = settings.subjects.control("counting", "redrive")
        reply = orjson.loads((await nc.request(subject, b'{"tenant": "acme"}', timeout=10)).data)
    assert reply == {"ok": True, "applied": 2, "still_parked": 0,
                     "subjects_unblocked": [settings.subjects.config("acme")],
                     "still_blocked": {}}  # fmt: skip


async def test_rebuilt_whole_or_for_one_tenant_the_read_model_equals_the_live_one(
    harness: Harness, event_log: EventLog
) -> None:
    # Given a projection of three tenants caught up, one of acme's events parked
    appended = await event_log.append_many(
        [registered(t) for t in ("acme", "beta", "gamma")]
        + [config_set(("acme", "beta", "gamma")[i % 3], n=i) for i in range(30)]
        + [config_set("acme", reason="fail me", n=99), config_set("acme", n=100)]
    )
    async with running(harness.projector(poison="fail me")) as projector:
        await projector.wait_for(appended[-1].seq)
        live = await harness.digest()

        # When acme alone, then the whole read model, is rebuilt in place
        one = await projector.rebuild("acme")
        after_one = await harness.digest()
        whole = await projector.rebuild()

        # Then each equals the live read model; the parked events stay out
        assert (one.events, whole.events) == (1 + 10, 3 + 30)
        assert after_one == live == await harness.digest()
        assert live[1]["acme"]["events"] == "11"
