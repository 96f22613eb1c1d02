"""Which kinds of job each pool runs, as its live workers' heartbeats say.

A worker names its kinds in every heartbeat (a third of a lease apart), so
the scheduler knows, per pool, what its live workers can run. A submit of a
kind that none of them runs is refused at once. A pool none of whose workers
has been heard within a lease (none started yet, or the scheduler itself just
started) is *unknown*, and its jobs are accepted: they wait for a worker.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from tenantplane.contracts.jobs import LeaseRenewal


class PoolKinds:
    """The kinds each pool's workers heard within `ttl_s` run."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self._clock = ttl_s, clock
        self._workers: defaultdict[str, dict[str, tuple[frozenset[str], float]]] = defaultdict(dict)

    def heard(self, pool: str, renewal: LeaseRenewal) -> None:
        """Note a heartbeat of one of `pool`'s workers (one naming no kinds says nothing)."""
        if renewal.kinds:
            until = self._clock() + self.ttl_s
            self._workers[pool][renewal.worker] = (frozenset(renewal.kinds), until)

    def served(self, pool: str) -> frozenset[str] | None:
        """The kinds `pool`'s live workers run; None when no live worker was heard."""
        now = self._clock()
        workers = self._workers.get(pool, {})
        for worker in [w for w, (_, until) in workers.items() if until <= now]:
            del workers[worker]
        if not workers:
            return None
        return frozenset().union(*(kinds for kinds, _ in workers.values()))
