"""A worker's heartbeat: it renews the leases of the attempts it runs.

The scheduler fails an attempt `worker_lost` when its lease runs out, so a
worker killed mid-job frees its capacity within a lease. Heartbeats go on core
NATS, one message per worker per third of a lease whatever the number of jobs
it runs, and are never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        self._ended: list[RunningAttempt] = []
        self._telling: set[asyncio.Task[None]] = set()

    async def run(self, loop: LoopHandle) -> None:
        """Beat until the process stops (a supervised loop)."""
        while not loop.stopping:
            await loop.retrying(self.beat, "renewing job leases")
            await loop.sleep(self.every_s)

    async def beat(self, ended: tuple[RunningAttempt, ...] = ()) -> None:
        """Renew the leases of the attempts running now, say which kinds run here, and
        which attempts just `ended`."""
        renewal = LeaseRenewal(
            worker=self.worker, attempts=tuple(self.running()), kinds=self.kinds, ended=ended
        )
        await self.nc.publish(self.subject, renewal.model_dump_json().encode())

    def ended(self, attempt: RunningAttempt) -> None:
        """Say at once that `attempt` is over (its end is appended), in one beat with the
        others that end meanwhile (call on the loop).

        Only a hint that lets the scheduler start the next job sooner: if it is lost,
        the scheduler frees the slot when it reads the attempt's end from the log.
        """
        self._ended.append(attempt)
        if len(self._ended) == 1:
            task = asyncio.get_running_loop().create_task(self._tell_ended())
            self._telling.add(task)
            task.add_done_callback(self._telling.discard)

    async def _tell_ended(self) -> None:
        ended, self._ended = tuple(self._ended), []
        with contextlib.suppress(Exception):
            await self.beat(ended)
