"""The local backend: dedicated pools as worker processes on this machine (`tenantctl dev up`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable

import structlog

from tenantplane.services.pools.desired import Plan, PoolSpec
from tenantplane.services.runtime.settings import Settings

log = structlog.get_logger(__name__)
STOP_TIMEOUT_S = 15.0


class LocalPools:
    """Starts `tenantctl worker run` processes per pool; a process that died is started again.

    `settings` are those of the worker processes (how they reach NATS and Redis),
    or a function giving each pool's (its own NATS user, say); each process
    serves its operations endpoint on a free port.
    """

    def __init__(self, settings: Settings | Callable[[str], Settings], kinds: str) -> None:
        self.settings_of = settings if callable(settings) else lambda pool: settings
        self.kinds = kinds
        self._running: dict[str, tuple[PoolSpec, list[subprocess.Popen[bytes]]]] = {}

    async def actual(self) -> dict[str, PoolSpec]:
        """Pools whose every worker process is alive."""
        return {
            name: spec
            for name, (spec, procs) in self._running.items()
            if all(p.poll() is None for p in procs)
        }

    async def apply(self, plan: Plan) -> None:
        """Stop deleted pools; (re)start new and changed ones."""
        for name in plan.delete:
            await self._stop(name)
        for spec in [*plan.create, *plan.update]:
            # A changed pool stops first; a crashed one counts as missing: clear what is left.
            await self._stop(spec.name)
            self._running[spec.name] = (spec, [self._start(spec) for _ in range(spec.replicas)])
            log.info("pool.started", pool=spec.name, replicas=spec.replicas, threads=spec.threads)

    def pids(self, name: str) -> list[int]:
        """The worker processes of pool `name`."""
        return [p.pid for p in self._running.get(name, (None, []))[1]]

    def _start(self, spec: PoolSpec) -> subprocess.Popen[bytes]:
        args = ["--pool", spec.name, "--threads", str(spec.threads), "--kinds", self.kinds]
        env = {**os.environ, **self.settings_of(spec.name).to_env(), "TENANTPLANE_OPS_PORT": "0"}
        return subprocess.Popen(
            [sys.executable, "-m", "tenantplane.services.cli", "worker", "run", *args],
            env=env,
            stdin=subprocess.DEVNULL,
        )

    async def _stop(self, name: str) -> None:
        _, procs = self._running.pop(name, (None, []))
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if procs:
            log.info("pool.stopped", pool=name)

    async def close(self) -> None:
        """Stop every pool this backend started."""
        for name in list(self._running):
            await self._stop(name)
