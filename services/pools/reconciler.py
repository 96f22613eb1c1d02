"""The pool reconciler: keeps a backend's dedicated pools equal to what tenants are assigned.

It reconciles on start, whenever the config projection reports a change, and
every `interval_s` besides (which also restarts pools whose workers died).
Each pass is idempotent, so a failed pass is simply tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from typing import Protocol

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.config import PROJECTION as CONFIG_PROJECTION
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.pools.desired import Plan, PoolSpec, assignments, dedicated_pools, plan
from tenantplane.services.runtime.supervisor import LoopHandle

log = structlog.get_logger(__name__)


class PoolBackend(Protocol):
    """Where pools run: local processes, or Deployments on Kubernetes."""

    async def actual(self) -> dict[str, PoolSpec]:
        """The pools running now."""
        ...

    async def apply(self, plan: Plan) -> None:
        """Carry out `plan`."""
        ...

    async def close(self) -> None:
        """Release what the backend holds (a local backend stops its processes)."""
        ...


class PoolReconciler:
    """Drives one backend toward the dedicated pools the config read model calls for."""

    def __init__(
        self,
        reader: ConfigReader,
        backend: PoolBackend,
        static: Collection[str],
        template: PoolSpec,
        *,
        interval_s: float = 30.0,
        behind: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self.reader, self.backend, self.static = reader, backend, set(static)
        self.template, self.interval_s = template, interval_s
        # Why the config read model cannot be trusted to delete pools now (None: it can).
        self.behind = behind
        self._wakeup = asyncio.Event()

    async def desired(self) -> dict[str, PoolSpec]:
        """The dedicated pools that should run now."""
        return dedicated_pools(await assignments(self.reader), self.static, self.template)

    async def plan(self) -> Plan:
        """What the backend must change (without changing it)."""
        return plan(await self.desired(), await self.backend.actual())

    async def reconcile(self) -> Plan:
        """One pass: compute the plan and apply it.

        Deleting a pool is only done on a read model that is complete and current:
        a flushed Redis (no tenants) or one still catching up would otherwise
        delete every dedicated pool (on Kubernetes, their Deployments).
        """
        todo = await self.plan()
        if todo.delete and self.behind is not None:
            why = await self.behind()
            if why is not None:
                log.warning("pools.delete_withheld", pools=list(todo.delete), reason=why)
                todo = replace(todo, delete=())
        if not todo.empty:
            log.info("pools.reconcile", **todo.summary())
            await self.backend.apply(todo)
        return todo

    async def run(self, nc: NATS, subjects: Subjects, loop: LoopHandle) -> None:
        """Reconcile until the loop's stop signal; a failed pass is retried (degraded)."""

        async def changed(_: Msg) -> None:
            self._wakeup.set()

        sub = await nc.subscribe(subjects.all_changes(CONFIG_PROJECTION), cb=changed)
        try:
            await nc.flush()  # a change after the first pass's reads wakes the next
            while not loop.stopping:
                self._wakeup.clear()
                await loop.retrying(self.reconcile, "reconciling pools")
                waiters = [asyncio.ensure_future(w.wait()) for w in (self._wakeup, loop.stop)]
                await asyncio.wait(waiters, timeout=self.interval_s, return_when="FIRST_COMPLETED")
                for waiter in waiters:
                    waiter.cancel()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
