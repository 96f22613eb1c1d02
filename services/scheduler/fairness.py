"""Fair choice among tenants: deficit round-robin over per-tenant backlogs.

Each tenant has its own backlog (highest priority first, then oldest). Tenants
take turns in a ring; on its turn a tenant may start up to `weight` jobs (its
quantum) before the next tenant's turn. A tenant that cannot start a job right
now (at its concurrency cap, out of rate, nothing due) is passed over without
losing its place. One tenant's flood therefore only ever delays another tenant
by one turn per job.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# A backlog's entry: (-priority, request sequence, job id). A plain tuple, so the heap
# compares in C; sequences are unique, so the job ids are never compared.
_Entry = tuple[int, int, str]


@dataclass
class _Backlog:
    heap: list[_Entry] = field(default_factory=list)
    deficit: float = 0.0


class FairQueue:
    """Backlogs of one pool's tenants, served by deficit round-robin."""

    def __init__(self) -> None:
        self._backlogs: dict[str, _Backlog] = {}
        self._ring: deque[str] = deque()

    def push(self, tenant_id: str, job_id: str, priority: int, seq: int) -> None:
        """Add a job to its tenant's backlog."""
        backlog = self._backlogs.get(tenant_id)
        if backlog is None:
            backlog = self._backlogs[tenant_id] = _Backlog()
            self._ring.append(tenant_id)
        heapq.heappush(backlog.heap, (-priority, seq, job_id))

    def remove(self, tenant_id: str, job_id: str) -> None:
        """Take a job out (cancelled or dispatched elsewhere)."""
        backlog = self._backlogs.get(tenant_id)
        if backlog is None:
            return
        backlog.heap = [e for e in backlog.heap if e[2] != job_id]
        heapq.heapify(backlog.heap)
        if not backlog.heap:
            self._drop(tenant_id)

    def depth(self, tenant_id: str | None = None) -> int:
        """Jobs waiting (of one tenant, or all)."""
        if tenant_id is not None:
            backlog = self._backlogs.get(tenant_id)
            return len(backlog.heap) if backlog else 0
        return sum(len(b.heap) for b in self._backlogs.values())

    def depths(self) -> dict[str, int]:
        """Jobs waiting per tenant."""
        return {t: len(b.heap) for t, b in self._backlogs.items()}

    def pop(
        self,
        can_start: Callable[[str, str], bool],
        weight: Callable[[str], float] = lambda _: 1.0,
    ) -> tuple[str, str] | None:
        """The next (tenant, job) to start, or None when no tenant can start one now.

        `can_start(tenant, job)` says whether that tenant's head job may start now.
        """
        for _ in range(len(self._ring)):
            tenant = self._ring[0]
            backlog = self._backlogs[tenant]
            head = backlog.heap[0][2]
            if not can_start(tenant, head):
                backlog.deficit = 0.0
                self._ring.rotate(-1)
                continue
            if backlog.deficit < 1.0:
                backlog.deficit += max(weight(tenant), 0.01)
            if backlog.deficit < 1.0:
                self._ring.rotate(-1)
                continue
            heapq.heappop(backlog.heap)
            backlog.deficit -= 1.0
            if not backlog.heap:
                self._drop(tenant)
            elif backlog.deficit < 1.0:
                self._ring.rotate(-1)
            return tenant, head
        return None

    def _drop(self, tenant_id: str) -> None:
        del self._backlogs[tenant_id]
        self._ring.remove(tenant_id)
