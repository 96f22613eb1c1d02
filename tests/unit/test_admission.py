"""The scheduler's parts that decide, tested alone: limits, admission, rate limits, board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tenantplane.contracts.envelope import Envelope, Event
from tenantplane.contracts.jobs import (
    JobCancelRequested,
    JobFailed,
    JobRequested,
    JobScheduled,
    JobStarted,
    JobSucceeded,
    LeaseRenewal,
)
from tenantplane.services.config.schema import DEFAULT_SCHEMA
from tenantplane.services.config.sdk import TenantConfig
from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.limits import DEFAULT_LIMITS, JobLimits
from tenantplane.services.runtime.eventlog import StoredEvent
from tenantplane.services.scheduler.admission import admit, may_start
from tenantplane.services.scheduler.board import Board
from tenantplane.services.scheduler.kinds import PoolKinds
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

    assert admit("acme", "noop", None, "default", capacity).refusal == "tenant acme does not exist"
    assert admit("acme", "noop", config("suspended"), "default", capacity).refusal == (
        "tenant acme is suspended"
    )
    assert admit("acme", "noop", config(), "default", capacity).pool == "default"
    gold = with_values({"jobs.pool": "gold"})
    assert admit("acme", "noop", gold, "default", capacity).pool == "gold"
    refused = admit("acme", "noop", with_values({"jobs.pool": "nope"}), "default", capacity)
    assert refused.refusal == "tenant acme's pool 'nope' does not exist"
    # A kind the pool's live workers do not run is refused; unknown kinds of a pool pass
    served = {"gold": frozenset({"report"})}.get
    assert admit("acme", "report", gold, "default", capacity, served).pool == "gold"
    assert admit("acme", "noop", gold, "default", capacity, served).refusal == (
        "no worker of pool gold runs jobs of kind 'noop' (it runs: report)"
    )
    assert admit("acme", "noop", config(), "default", capacity, served).pool == "default"


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


def test_an_attempt_its_worker_reports_ended_frees_its_slot_before_the_log_says_so() -> None:
    board = Board()
    board.apply(stored(1, JobRequested(job_id="a", kind="noop")))
    board.admit(next(board.to_admit()), "default")
    board.take("default", lambda _: True, lambda _: 1.0)
    board.apply(stored(2, JobScheduled(job_id="a", pool="default", attempt=1)))
    assert (board.in_flight("default"), board.active["acme"]) == (1, 1)
    # Another pool's worker, another attempt or an unknown job frees nothing
    assert not board.release("gold", "a", 1)
    assert not board.release("default", "a", 2)
    assert not board.release("default", "zz", 1)
    # When its worker says attempt 1 ended, the slot is free at once, and only once
    assert board.release("default", "a", 1)
    assert not board.release("default", "a", 1)
    assert (board.in_flight("default"), board.active["acme"]) == (0, 0)
    assert board.scheduled() == []
    # The log's events of that attempt, read later, count nothing again
    board.apply(stored(3, JobStarted(job_id="a", attempt=1, worker="w")))
    assert (board.in_flight("default"), board.active["acme"]) == (0, 0)
    # A failed attempt puts the job back in line; its next attempt counts again
    retry_now = datetime.now(UTC) - timedelta(seconds=1)
    board.apply(stored(4, JobFailed(job_id="a", attempt=1, error="boom", retry_at=retry_now)))
    assert board.waiting("default") == {"acme": 1}
    board.take("default", lambda _: True, lambda _: 1.0)
    board.apply(stored(5, JobScheduled(job_id="a", pool="default", attempt=2)))
    assert (board.in_flight("default"), board.active["acme"]) == (1, 1)
    board.apply(stored(6, JobSucceeded(job_id="a", attempt=2)))
    assert (board.in_flight("default"), board.active["acme"], board.jobs) == (0, 0, {})


def test_a_pools_kinds_are_those_its_live_workers_last_named() -> None:
    now = [0.0]
    kinds = PoolKinds(ttl_s=15, clock=lambda: now[0])
    assert kinds.served("default") is None  # no worker heard: not known
    kinds.heard("default", LeaseRenewal(worker="w1", attempts=(), kinds=("a", "b")))
    kinds.heard("default", LeaseRenewal(worker="w2", attempts=(), kinds=("c",)))
    kinds.heard("default", LeaseRenewal(worker="w3", attempts=()))  # names none: says nothing
    assert kinds.served("default") == frozenset({"a", "b", "c"})
    now[0] = 10.0
    kinds.heard("default", LeaseRenewal(worker="w2", attempts=(), kinds=("c",)))
    now[0] = 20.0  # w1 silent for longer than the ttl
    assert kinds.served("default") == frozenset({"c"})
    now[0] = 40.0
    assert kinds.served("default") is None
