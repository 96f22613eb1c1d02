"""Leases of running attempts, and the one rule for a failed attempt."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tenantplane.contracts.jobs import LeaseRenewal, RunningAttempt
from tenantplane.contracts.subjects import Subjects, matches
from tenantplane.services.jobs.aggregate import Job, JobStatus, RetryPolicy
from tenantplane.services.scheduler.leases import Leases


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def running(job_id: str = "j1", attempt: int = 1, pool: str = "default") -> Job:
    return Job("acme", job_id, status=JobStatus.RUNNING, attempt=attempt, pool=pool)


def heartbeat(*attempts: tuple[str, int]) -> LeaseRenewal:
    return LeaseRenewal(
        worker="w1",
        attempts=tuple(RunningAttempt(tenant_id="acme", job_id=j, attempt=a) for j, a in attempts),
    )


def hearing(clock: Clock) -> Leases:
    leases = Leases(15.0, clock)
    leases.hearing = True
    return leases


def test_an_attempt_whose_worker_stays_silent_expires_after_one_lease() -> None:
    clock = Clock()
    leases = hearing(clock)
    leases.track(running())
    clock.now += 14.9
    assert leases.expired() == []
    clock.now += 0.1
    assert leases.expired() == ["j1"]


def test_heartbeats_renew_only_the_attempts_they_name_from_their_own_pool() -> None:
    clock = Clock()
    leases = hearing(clock)
    for job_id in ("j1", "j2", "j3"):
        leases.track(running(job_id))
    clock.now += 10
    assert leases.renew("default", heartbeat(("j1", 1), ("j2", 2))) == 1  # j2 runs attempt 1
    assert leases.renew("other-pool", heartbeat(("j3", 1))) == 0
    clock.now += 10
    assert leases.expired() == ["j2", "j3"]


def test_a_job_that_stops_running_holds_no_lease_and_a_new_attempt_gets_a_full_one() -> None:
    clock = Clock()
    leases = hearing(clock)
    job = running()
    leases.track(job)
    clock.now += 10
    leases.track(replace(job, progress=0.5))  # another event of the same attempt
    clock.now += 5
    assert leases.expired() == ["j1"]
    leases.track(replace(job, attempt=2))
    assert leases.expired() == []
    leases.track(replace(job, status=JobStatus.SUCCEEDED))
    clock.now += 60
    assert leases.expired() == []
    assert len(leases) == 0


def test_nothing_expires_while_heartbeats_are_not_heard_and_hearing_again_restarts_leases() -> None:
    clock = Clock()
    leases = Leases(15.0, clock)
    leases.track(running())
    clock.now += 60
    assert leases.expired() == []  # no listener: nobody could have heard the worker
    leases.hearing = True
    leases.restart()
    clock.now += 14
    assert leases.expired() == []
    clock.now += 1
    assert leases.expired() == ["j1"]


def test_a_failed_attempt_is_retried_with_backoff_while_attempts_remain_then_dead_lettered() -> (
    None
):
    policy = RetryPolicy(base_s=2.0, max_s=5.0)
    job = Job("acme", "j1", status=JobStatus.RUNNING, attempt=2, max_attempts=3)
    before = datetime.now(UTC)
    failed, dead = policy.failed(job, "worker_lost")
    assert dead is None
    assert failed.retry_at is not None
    # the second attempt's delay is 4 s, with jitter of +-50%
    assert (
        before + timedelta(seconds=2) <= failed.retry_at <= datetime.now(UTC) + timedelta(seconds=6)
    )
    assert policy.retry_at(10) <= datetime.now(UTC) + timedelta(seconds=7.5)  # capped
    failed, dead = policy.failed(replace(job, attempt=3), "worker_lost")
    assert (failed.retry_at, failed.error) == (None, "worker_lost")
    assert dead is not None
    assert dead.attempts == 3


def test_a_heartbeat_subject_names_its_pool() -> None:
    subjects = Subjects("tp")
    assert subjects.job_leases("gold") == "tp.lease.gold"
    assert matches(subjects.all_job_leases(), "tp.lease.gold")
    assert subjects.pool_of("tp.lease.gold") == "gold"
    assert subjects.pool_of("tp.job.acme.j1") is None
    with pytest.raises(ValueError, match="pool"):
        subjects.job_leases("a.>")
