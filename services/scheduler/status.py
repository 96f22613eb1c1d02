"""What the scheduler shows of its pools: `tenantctl pool list` and the metrics.

Per pool: its capacity, the jobs in flight (queued in the broker or running),
the messages in its queue, the jobs waiting per tenant, and the kinds its live
workers run. Read from the scheduler's board; a status request is answered by
one scheduler replica (a queue group).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.metrics import Sample
from tenantplane.services.runtime.supervisor import LoopHandle
from tenantplane.services.scheduler.admission import PoolCapacity
from tenantplane.services.scheduler.board import Board
from tenantplane.services.scheduler.dispatch import Dispatcher
from tenantplane.services.scheduler.kinds import PoolKinds


class PoolStatus:
    """The pools as the scheduler's board, capacity, broker and heartbeats show them."""

    def __init__(
        self, board: Board, capacity: PoolCapacity, dispatcher: Dispatcher, kinds: PoolKinds
    ) -> None:
        self.board, self.capacity, self.dispatcher, self.kinds = board, capacity, dispatcher, kinds

    async def serve(self, nc: NATS, subjects: Subjects, loop: LoopHandle) -> None:
        """Answer status requests until the loop's stop signal (a supervised loop)."""
        sub = await nc.subscribe(subjects.scheduler_status(), queue="scheduler", cb=self._answer)
        try:
            while not loop.stopping:
                await loop.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _answer(self, msg: Msg) -> None:
        await msg.respond(orjson.dumps(await self.rows()))

    def samples(self) -> Iterator[Sample]:
        """Per pool capacity, in-flight and waiting jobs, and waiting jobs per tenant."""
        for pool in self.pools():
            waiting = self.board.waiting(pool)
            yield Sample("tenantplane_pool_capacity_jobs", (pool,), self.capacity.of(pool))
            yield Sample("tenantplane_pool_in_flight_jobs", (pool,), self.board.in_flight(pool))
            yield Sample("tenantplane_pool_waiting_jobs", (pool,), sum(waiting.values()))
            for tenant, depth in waiting.items():
                yield Sample("tenantplane_tenant_waiting_jobs", (pool, tenant), depth)

    async def rows(self) -> list[dict[str, object]]:
        """Per pool: capacity, jobs in flight, queued in the broker, waiting per tenant, and
        the kinds its live workers run (None: no worker heard)."""
        rows: list[dict[str, object]] = []
        for pool in self.pools():
            waiting = self.board.waiting(pool)
            rows.append({
                "pool": pool, "capacity": self.capacity.of(pool),
                "in_flight": self.board.in_flight(pool),
                "in_queue": await self.dispatcher.depth(pool),
                "waiting": sum(waiting.values()), "waiting_by_tenant": waiting,
                "kinds": None if (kinds := self.kinds.served(pool)) is None else sorted(kinds),
            })  # fmt: skip
        return rows

    def pools(self) -> list[str]:
        """The installation's pools, and the dedicated pools that have jobs now."""
        return sorted({*self.capacity.configured, *self.board.busy_pools()})
