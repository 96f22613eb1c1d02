"""One supervisor for every long-running loop of a process.

A loop is a coroutine that runs until the process stops. The supervisor starts
each in its own task and watches it:

- a loop that raises (or returns before the stop) is logged once, with its
  traceback and cause, and started again after a capped exponential backoff;
- while a loop is down, or while it reports trouble it is riding out (Redis
  loading its data set, NATS not answering), the process is not ready, and
  `/readyz` and `tenantctl status` name the loop and why;
- every restart is counted, by loop, for the metrics endpoint.

Transient infrastructure errors should not crash a loop at all: a loop wraps
each step in `LoopHandle.retrying`, which retries them with backoff and marks
the loop degraded meanwhile. A crash is for what retrying cannot fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from tenantplane.services.runtime.errors import CommandFailed
from tenantplane.services.runtime.metrics import Sample
from tenantplane.services.runtime.transient import describe_error, is_transient

T = TypeVar("T")
log = structlog.get_logger(__name__)

# The body of a loop: runs until `stop` is set, reporting through its handle.
LoopBody = Callable[["LoopHandle"], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts (and retries): doubling from `first_s` up to `max_s`."""

    first_s: float = 0.5
    max_s: float = 30.0
    # A loop that stayed up this long starts again from `first_s` after its next crash.
    stable_after_s: float = 60.0

    def after(self, delay: float) -> float:
        """The delay that follows `delay`."""
        return min(self.max_s, max(self.first_s, delay * 2))


@dataclass
class LoopHandle:
    """What a running loop sees of its supervision: the stop signal and its own health."""

    name: str
    stop: asyncio.Event
    backoff: Backoff = field(default_factory=Backoff)
    restarts: int = 0
    down_since: float | None = None
    trouble: str = ""
    last_error: str = ""

    @property
    def stopping(self) -> bool:
        """Whether the process is stopping."""
        return self.stop.is_set()

    def degraded(self, reason: str) -> None:
        """The loop runs but cannot do its work now (it is retrying)."""
        if reason != self.trouble:
            log.warning("loop.degraded", loop=self.name, reason=reason)
        self.trouble = reason

    def recovered(self) -> None:
        """The loop does its work again."""
        if self.trouble:
            log.info("loop.recovered", loop=self.name, after=self.trouble)
        self.trouble = ""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if the process stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def retrying(self, step: Callable[[], Awaitable[T]], what: str) -> T | None:
        """Run `step` until it succeeds, retrying transient infrastructure errors.

        Returns None only when the process stops while retrying; any other error
        propagates to the supervisor.
        """
        delay = self.backoff.first_s / 4
        while True:
            try:
                result = await step()
            except Exception as e:
                if not is_transient(e):
                    raise
                self.degraded(f"{what}: {describe_error(e)}")
                await self.sleep(delay)
                if self.stopping:
                    return None
                delay = min(self.backoff.max_s / 4, delay * 2)
                continue
            self.recovered()
            return result

    def problem(self) -> str | None:
        """Why this loop is not doing its work (None while it is)."""
        if self.down_since is not None:
            down = time.monotonic() - self.down_since
            return f"down for {down:.1f}s after {self.last_error} (restart {self.restarts})"
        return self.trouble or None


class Supervisor:
    """Runs a process's loops, restarting each that fails."""

    def __init__(self, stop: asyncio.Event, backoff: Backoff | None = None) -> None:
        self.stop = stop
        self.backoff = backoff or Backoff()
        self.loops: dict[str, LoopHandle] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, body: LoopBody) -> LoopHandle:
        """Run `body` under supervision until the stop event is set."""
        if name in self.loops:
            raise ValueError(f"a loop named {name!r} is already supervised")
        handle = LoopHandle(name, self.stop, self.backoff)
        self.loops[name] = handle
        self._tasks[name] = asyncio.create_task(self._watch(handle, body), name=name)
        return handle

    async def _watch(self, handle: LoopHandle, body: LoopBody) -> None:
        delay = 0.0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                await body(handle)
                if self.stop.is_set():
                    return
                raise LoopExited(f"loop {handle.name} returned before the process stopped")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                stable = time.monotonic() - started >= self.backoff.stable_after_s
                delay = self.backoff.first_s if stable else self.backoff.after(delay)
                self._crashed(handle, e, delay)
            await handle.sleep(delay)
            handle.down_since = None

    def _crashed(self, handle: LoopHandle, error: Exception, delay: float) -> None:
        handle.restarts += 1
        handle.trouble = ""
        handle.down_since = time.monotonic()
        handle.last_error = describe_error(error)
        log.error(
            "loop.crashed",
            loop=handle.name,
            error=handle.last_error,
            restart_in_s=round(delay, 2),
            restarts=handle.restarts,
            exc_info=error,
        )

    async def readiness(self) -> str | None:
        """A readiness check: None while every loop does its work."""
        problems = [f"{n}: {p}" for n, h in self.loops.items() if (p := h.problem()) is not None]
        return "; ".join(problems) or None

    def samples(self) -> Iterator[Sample]:
        """Restarts and health of every loop, for the metrics endpoint."""
        for name, handle in self.loops.items():
            yield Sample("tenantplane_loop_restarts", (name,), handle.restarts)
            yield Sample("tenantplane_loop_up", (name,), 0 if handle.problem() else 1)

    def details(self) -> dict[str, dict[str, object]]:
        """Every loop's state, for `tenantctl status`."""
        details: dict[str, dict[str, object]] = {}
        for name, handle in self.loops.items():
            problem = handle.problem()
            details[name] = {"ok": problem is None, "problem": problem or "",
                             "restarts": handle.restarts}  # fmt: skip
        return details

    async def wait(self, timeout: float = 10.0) -> None:
        """After the stop event: wait for every loop to end (cancelling stragglers)."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            log.warning("loop.stop_timeout", loop=task.get_name())
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class LoopExited(CommandFailed):
    """A supervised loop returned while the process was still running."""
