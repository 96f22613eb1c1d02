"""The event log against a real nats-server: concurrency, dedup, replay."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime

import pytest

from tenantplane.services.runtime.errors import ConcurrencyConflict
from tenantplane.services.runtime.eventlog import EventLog, Expected
from tenantplane.services.runtime.follower import Follower
from tenantplane.services.runtime.replaying import REPLAY_THRESHOLDS
from tests.support.events import config_set, registered

pytestmark = pytest.mark.integration


async def test_racing_writers_exactly_one_wins(event_log: EventLog) -> None:
    # Given an aggregate (the tenant's config subject) with one event
    first = await event_log.append(config_set("acme", a=0), Expected(0))
    # When two writers append with the same expected sequence at once
    results = await asyncio.gather(
        event_log.append(config_set("acme", a=1), Expected(first.seq)),
        event_log.append(config_set("acme", a=2), Expected(first.seq)),
        return_exceptions=True,
    )
    # Then exactly one succeeds and the other gets a ConcurrencyConflict with the real head
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert len(conflicts) == 1
    winner = next(r for r in results if not isinstance(r, BaseException))
    assert conflicts[0].expected == first.seq
    assert conflicts[0].actual == winner.seq


async def test_same_event_appended_twice_is_stored_once(event_log: EventLog) -> None:
    event = registered("acme")
    first = await event_log.append(event)
    again = await event_log.append(event)
    assert again.duplicate
    assert again.seq == first.seq
    stored = [e async for e in event_log.read(event_log.subjects.tenant_events("acme"))]
    assert [e.envelope for e in stored] == [event]


async def test_expectation_can_span_a_tenants_lifecycle_and_config(event_log: EventLog) -> None:
    # Given lifecycle and config events of one tenant
    subjects = event_log.subjects
    boundary = subjects.tenant_state("acme")
    await event_log.append(registered("acme"), Expected(0, boundary))
    latest = await event_log.append(config_set("acme", a=1), Expected(1, boundary))
    # When a writer still believes the lifecycle event is the last one
    # Then its write is refused although the lifecycle subject did not move
    with pytest.raises(ConcurrencyConflict):
        await event_log.append(config_set("acme", a=2), Expected(1, boundary))
    assert await event_log.last_seq(subjects.config("acme")) == latest.seq


async def test_read_replays_from_a_sequence_or_a_time(event_log: EventLog) -> None:
    for tenant in ("a", "b", "c"):
        await event_log.append(registered(tenant))
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await event_log.append(config_set("a", x=1))
    everything = event_log.subjects.all_events()
    from_two = [e.seq async for e in event_log.read(everything, start_seq=2)]
    since = [e.envelope.type async for e in event_log.read(everything, start_time=middle)]
    only_a = [e.seq async for e in event_log.read(event_log.subjects.tenant_events("a"))]
    assert from_two == [2, 3, 4]
    assert since == ["config.values_set"]
    assert only_a == [1, 4]


async def test_read_of_an_empty_filter_ends_at_once(event_log: EventLog) -> None:
    assert [e async for e in event_log.read(event_log.subjects.tenant_events("ghost"))] == []
    assert await event_log.last_seq(event_log.subjects.lifecycle("ghost")) == 0


async def test_append_many_keeps_order_and_dedups(event_log: EventLog) -> None:
    events = [config_set("acme", n=i) for i in range(300)]
    appended = await event_log.append_many(events + events[:10])
    assert [a.seq for a in appended[:300]] == list(range(1, 301))
    assert all(a.duplicate for a in appended[300:])
    assert await event_log.head() == 300


async def test_read_subject_walks_one_subject_without_a_consumer(event_log: EventLog) -> None:
    await event_log.append(config_set("acme", n=1))
    await event_log.append(config_set("beta", n=2))
    await event_log.append(config_set("acme", n=3))
    subject = event_log.subjects.config("acme")
    assert [e.seq async for e in event_log.read_subject(subject)] == [1, 3]
    assert [e.seq async for e in event_log.read_subject(subject, start_seq=2)] == [3]
    info = await event_log.js.stream_info(event_log.subjects.control_stream)
    assert info.state.consumer_count == 0


async def test_a_follower_collects_garbage_less_often_only_while_it_replays(
    event_log: EventLog,
) -> None:
    await event_log.append_many([config_set("acme", n=i) for i in range(50)])
    before = gc.get_threshold()
    follower = Follower(event_log, [event_log.subjects.all_events()])
    await follower.start()
    try:
        assert gc.get_threshold()[0] == max(REPLAY_THRESHOLDS[0], before[0])
        taken: list[int] = []
        while len(taken) < 50:
            await follower.wait(5.0)
            taken += [raw.seq for raw in follower.take()]
        assert follower.caught_up
        assert gc.get_threshold() == before
    finally:
        await follower.close()
    assert gc.get_threshold() == before
