"""Which fire times are due: on time, after downtime (catch-up), staggered, in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenantplane.contracts.schedules import ScheduleDefined
from tenantplane.services.scheduler.schedules import Schedule

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def every_second(
    catch_up: str = "once", last_fire: datetime | None = None, window_s: float = 3600
) -> Schedule:
    definition = ScheduleDefined.model_validate(
        {"schedule_id": "tick", "cron": "* * * * * *", "kind": "noop", "catch_up": catch_up,
         "catch_up_window_s": window_s}
    )  # fmt: skip
    return Schedule("acme", "tick", definition, since=T0, last_fire=last_fire)


def seconds(*offsets: int) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in offsets]


def test_an_on_time_fire_is_due_once() -> None:
    schedule = every_second(last_fire=T0 + timedelta(seconds=5))
    assert schedule.due(T0 + timedelta(seconds=6.1), tolerance_s=2) == seconds(6)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("skip", seconds(9, 10)), ("once", seconds(10)), ("all", seconds(*range(1, 11)))],
)
def test_after_downtime_the_catch_up_policy_decides(policy: str, expected: list[datetime]) -> None:
    schedule = every_second(policy)
    assert schedule.due(T0 + timedelta(seconds=10.5), tolerance_s=2) == expected


def test_catch_up_looks_back_no_further_than_its_window() -> None:
    schedule = every_second("all", window_s=3)
    assert schedule.due(T0 + timedelta(seconds=10.5), tolerance_s=2) == seconds(8, 9, 10)


def test_stagger_is_stable_per_tenant_and_within_its_bound() -> None:
    definition = ScheduleDefined(schedule_id="hourly", cron="0 * * * *", kind="noop", stagger_s=600)
    offsets = {Schedule(f"t{i}", "hourly", definition).offset() for i in range(200)}
    assert all(0 <= o < 600 for o in offsets)
    assert len(offsets) > 150
    assert (
        Schedule("t1", "hourly", definition).offset()
        == Schedule("t1", "hourly", definition).offset()
    )


def test_fire_times_follow_the_schedules_time_zone() -> None:
    definition = ScheduleDefined(
        schedule_id="morning", cron="0 9 * * *", timezone="Europe/Berlin", kind="noop"
    )
    schedule = Schedule("acme", "morning", definition, since=T0)
    assert schedule.next_fire(T0) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_paused_and_removed_schedules_fire_nothing() -> None:
    schedule = every_second()
    assert Schedule(**{**schedule.__dict__, "paused": True}).due(T0 + timedelta(seconds=3), 2) == []
    assert (
        Schedule(**{**schedule.__dict__, "removed": True}).due(T0 + timedelta(seconds=3), 2) == []
    )


def test_a_bad_cron_expression_or_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="not a cron expression"):
        ScheduleDefined(schedule_id="x", cron="61 * * * *", kind="noop")
    with pytest.raises(ValueError, match="unknown time zone"):
        ScheduleDefined(schedule_id="x", cron="* * * * *", kind="noop", timezone="Mars/Base")
