"""The scheduler's parts that decide, tested alone: limits, admission, rate limits, board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tenantplane.contracts.envelope import Envelope, Event
from tenantplane.contracts.jobs import (
    JobCancelRequested,
    JobRequested,
    JobScheduled,
    JobSucceeded,
)
from tenantplane.services.config.schema import DEFAULT_SCHEMA
from tenantplane.services.config.sdk import TenantConfig
from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.limits import DEFAULT_LIMITS, JobLimits
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.scheduler.admission import admit, may_start
from tenantplane.services.scheduler.board import Board
from tenantplane.services.scheduler.ratelimit import RateLimits


def config(status: str = "active", **values: object) -> TenantConfig:
    return TenantConfig("acme", status, "", 1, values, defaults=DEFAULT_SCHEMA.defaults())


def with_values(values: dict[str, object]) -> TenantConfig:
    return config("active", **values)


def test_limits_come_from_config_with_defaults_only_from_the_schema() -> None:
    declared = {k: s.default for k, s in DEFAULT_SCHEMA.keys.items() if k.startswith("jobs.")}
    assert (
        JobLimits(
            max_concurrency=declared["jobs.max_concurrency"],
            rate_per_minute=declared["jobs.rate_per_minute"],
            weight=declared["jobs.weight"],
        )
        == DEFAULT_LIMITS
    )
    assert JobLimits.of(None) == DEFAULT_LIMITS
    own = JobLimits.of(with_values({"jobs.max_concurrency": 2, "jobs.weight": 3}))
    assert (own.max_concurrency, own.weight) == (2, 3.0)
    # A value of the wrong type (written under another schema) falls back to the defaults
    assert JobLimits.of(with_values({"jobs.max_concurrency": "many"})) == DEFAULT_LIMITS


def test_admission_names_why_a_job_is_refused_and_which_pool_takes_it() -> None:
    def capacity(pool: str) -> int:
        return {"default": 8, "gold": 2}.get(pool, 0)

    assert admit("acme", None, "default", capacity).refusal == "tenant acme does not exist"
    assert admit("acme", config("suspended"), "default", capacity).refusal == (
        "tenant acme is suspended"
    )
    assert admit("acme", config(), "default", capacity).pool == "default"
    assert admit("acme", with_values({"jobs.pool": "gold"}), "default", capacity).pool == "gold"
    refused = admit("acme", with_values({"jobs.pool": "nope"}), "default", capacity)
    assert refused.refusal == "tenant acme's pool 'nope' does not exist"


def test_a_tenant_starts_jobs_while_active_and_under_its_concurrency() -> None:
    limits = JobLimits(max_concurrency=2, rate_per_minute=60, weight=1)
    assert may_start(config(), limits, 1)
    assert not may_start(config(), limits, 2)
    assert not may_start(config("suspended"), limits, 0)
    assert may_start(None, limits, 0)  # not read yet: admission already checked it


def test_a_rate_limit_allows_a_minutes_burst_then_refills() -> None:
    now = [0.0]
    rates = RateLimits(lambda: now[0])
    for _ in range(3):
        assert rates.allows("acme", 3)
        rates.spend("acme", 3)
    assert not rates.allows("acme", 3)
    assert rates.allows("beta", 3)  # each tenant its own bucket
    now[0] = 20.0  # a third of a minute: one token back
    assert rates.allows("acme", 3)


def stored(seq: int, data: Event) -> StoredEvent:
    return StoredEvent(seq, "job", Envelope.wrap(data, tenant_id="acme", actor="test"))


def test_the_board_places_each_job_by_its_state() -> None:
    board = Board()
    board.apply(stored(1, JobRequested(job_id="a", kind="noop")))
    later = datetime.now(UTC) + timedelta(hours=1)
    board.apply(stored(2, JobRequested(job_id="b", kind="noop", not_before=later)))
    # Both wait for admission, oldest first
    waiting = list(board.to_admit())
    assert [j.job_id for j in waiting] == ["a", "b"]
    for job in waiting:
        board.admit(job, "default")
    # One is due and waits in its pool; the other is delayed until its time
    assert board.waiting("default") == {"acme": 1}
    assert board.take("default", lambda _: True, lambda _: 1.0) is not None
    board.apply(stored(3, JobScheduled(job_id="a", pool="default", attempt=1)))
    assert board.in_flight("default") == 1
    board.release_due(later.timestamp() + 1)
    assert board.waiting("default") == {"acme": 1}
    # A waiting job asked to cancel is in line to be cancelled, a finished one is gone
    board.apply(stored(4, JobCancelRequested(job_id="b")))
    assert [j.job_id for j in board.to_cancel()] == ["b"]
    assert board.waiting("default") == {}
    board.apply(stored(5, JobSucceeded(job_id="a", attempt=1)))
    assert (board.in_flight("default"), "a" in board.jobs) == (0, False)
    # And an event seen twice changes nothing
    assert board.apply(stored(5, JobSucceeded(job_id="a", attempt=1))) is None
    assert board.jobs["b"].status is JobStatus.REQUESTED
