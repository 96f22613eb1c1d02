"""A worker's heartbeat: it renews the leases of the attempts it runs.

The scheduler fails an attempt `worker_lost` when its lease runs out, so a
worker killed mid-job frees its capacity within a lease. Heartbeats go on core
NATS, one message per worker per third of a lease whatever the number of jobs
it runs, and are never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nats.aio.client import Client as NATS

from tenantplane.contracts.jobs import LeaseRenewal, RunningAttempt
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.supervisor import LoopHandle


class Heartbeat:
    """Publishes, every `every_s`, the attempts `running()` lists and the worker's kinds."""

    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        pool: str,
        worker: str,
        running: Callable[[], list[RunningAttempt]],
        every_s: float,
        kinds: Sequence[str] = (),
    ) -> None:
        self.nc, self.subject, self.worker = nc, subjects.job_leases(pool), worker
        self.running, self.every_s, self.kinds = running, every_s, tuple(kinds)

    async def run(self, loop: LoopHandle) -> None:
        """Beat until the process stops (a supervised loop)."""
        while not loop.stopping:
            await loop.retrying(self.beat, "renewing job leases")
            await loop.sleep(self.every_s)

    async def beat(self) -> None:
        """Renew the leases of the attempts running now, and say which kinds run here."""
        renewal = LeaseRenewal(worker=self.worker, attempts=tuple(self.running()), kinds=self.kinds)
        await self.nc.publish(self.subject, renewal.model_dump_json().encode())
