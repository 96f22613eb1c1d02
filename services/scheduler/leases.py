"""Leases of running attempts: how the scheduler learns that a worker died mid-job.

A running attempt holds a lease of `lease_s`. It is granted when the scheduler
sees the attempt start (which covers the time until its worker's first
heartbeat) and renewed by every heartbeat of its worker (`LeaseRenewal`, every
third of a lease). An attempt whose lease ran out is failed `worker_lost` by the
scheduler, and so gives back its pool's capacity and its tenant's slot.

A lease can only run out while the scheduler hears heartbeats: a scheduler
that starts, subscribes again, or reconnects to NATS cannot know what it
missed, so it grants every running attempt a fresh lease from then.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError

from tenantplane.contracts.jobs import LeaseRenewal, RunningAttempt
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.jobs.aggregate import Job, JobStatus
from tenantplane.services.runtime.supervisor import LoopHandle
from tenantplane.services.scheduler.kinds import PoolKinds

log = structlog.get_logger(__name__)


@dataclass
class _Lease:
    pool: str
    attempt: int
    until: float


class Leases:
    """The lease of every running attempt, by job id."""

    def __init__(self, lease_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lease_s, self._clock = lease_s, clock
        self._held: dict[str, _Lease] = {}
        # Whether heartbeats are heard now; leases do not run out while they are not.
        self.hearing = False

    def track(self, job: Job) -> None:
        """Follow a job's state: an attempt that starts gets a full lease, a job that no
        longer runs holds none."""
        held = self._held.get(job.job_id)
        if job.status is not JobStatus.RUNNING:
            if held is not None:
                del self._held[job.job_id]
        elif held is None or held.attempt != job.attempt:
            self._held[job.job_id] = _Lease(job.pool, job.attempt, self._clock() + self.lease_s)

    def renew(self, pool: str, renewal: LeaseRenewal) -> int:
        """Extend the leases a heartbeat from `pool` names; returns how many it held.

        An attempt of another pool is ignored: a pool's workers keep only their own
        jobs alive.
        """
        until, renewed = self._clock() + self.lease_s, 0
        for running in renewal.attempts:
            held = self._held.get(running.job_id)
            if held is not None and held.attempt == running.attempt and held.pool == pool:
                held.until, renewed = until, renewed + 1
        return renewed

    def restart(self) -> None:
        """Start every lease afresh: heartbeats may have been missed until now."""
        until = self._clock() + self.lease_s
        for held in self._held.values():
            held.until = until

    def expired(self) -> list[str]:
        """Jobs whose running attempt's lease ran out (none while not hearing)."""
        if not self.hearing:
            return []
        now = self._clock()
        return [job_id for job_id, held in self._held.items() if held.until <= now]

    def clear(self) -> None:
        """Forget every lease (the scheduler rebuilds its state)."""
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)


class LeaseListener:
    """Hears every pool's heartbeats for `leases` and `kinds`, and hands the attempts
    they say ended to `ended` (a supervised loop)."""

    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        leases: Leases,
        kinds: PoolKinds,
        ended: Callable[[str, tuple[RunningAttempt, ...]], object] = lambda pool, ended: None,
    ) -> None:
        self.nc, self.subjects, self.leases, self.kinds = nc, subjects, leases, kinds
        self.ended = ended

    async def run(self, loop: LoopHandle) -> None:
        """Listen until the process stops; restart the leases after any gap in hearing."""
        sub = await self.nc.subscribe(self.subjects.all_job_leases(), cb=self._heard)
        self.leases.restart()
        self.leases.hearing = True
        reconnects = self.nc.stats["reconnects"]
        try:
            while not loop.stopping:
                await loop.sleep(0.5)
                if not self.nc.is_connected or self.nc.stats["reconnects"] != reconnects:
                    # Heartbeats sent meanwhile were lost to this scheduler, not missing.
                    reconnects = self.nc.stats["reconnects"]
                    self.leases.restart()
        finally:
            self.leases.hearing = False
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _heard(self, msg: Msg) -> None:
        pool = self.subjects.pool_of(msg.subject)
        try:
            renewal = LeaseRenewal.model_validate_json(msg.data)
        except ValidationError as e:
            log.warning("leases.bad_heartbeat", subject=msg.subject, error=str(e)[:200])
            return
        if pool is not None:
            self.leases.renew(pool, renewal)
            self.kinds.heard(pool, renewal)
            if renewal.ended:
                self.ended(pool, renewal.ended)
