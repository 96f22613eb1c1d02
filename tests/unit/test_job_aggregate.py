"""The job aggregate's copy: what `dataclasses.replace` makes, faster."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.jobs import JobRequested, JobScheduled
from tenantplane.services.jobs.aggregate import Job, JobStatus, evolve
from tenantplane.services.runtime.eventlog import StoredEvent


def test_an_updated_job_equals_what_replace_makes_and_leaves_the_original_alone() -> None:
    job = Job("acme", "j-1", kind="report", args={"n": 1}, requested_at=datetime.now(UTC))
    changes = {"status": JobStatus.SCHEDULED, "pool": "default", "attempt": 1, "version": 7}
    updated = job.updated(**changes)
    assert updated == dataclasses.replace(job, **changes)  # type: ignore[arg-type]
    assert type(updated) is Job
    assert (job.status, job.pool, job.version) == (JobStatus.REQUESTED, "", 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        updated.pool = "other"  # type: ignore[misc]


def test_updating_a_field_a_job_does_not_have_is_refused() -> None:
    with pytest.raises(TypeError, match="no field colour"):
        Job("acme", "j-1").updated(colour="red")


def test_jobs_folded_from_their_requests_share_no_dicts() -> None:
    def stored(seq: int, data: JobRequested | JobScheduled) -> StoredEvent:
        return StoredEvent(seq, "job", Envelope.wrap(data, tenant_id="acme", actor="test"))

    a = evolve(None, stored(1, JobScheduled(job_id="a", pool="default", attempt=1)))
    b = evolve(None, stored(2, JobRequested(job_id="b", kind="report", args={"n": 2})))
    assert (a.job_id, a.version, a.status, a.pool) == ("a", 1, JobStatus.SCHEDULED, "default")
    assert (b.kind, b.args, b.requested_seq, b.tenant_id) == ("report", {"n": 2}, 2, "acme")
    assert a.args is not b.args
    assert a.result is not b.result
    a.args["x"] = 1  # a job's dicts are its own: nothing leaks into the next one
    c = evolve(None, stored(3, JobScheduled(job_id="c", pool="default", attempt=1)))
    assert c.args == {}
    assert c.result == {}
