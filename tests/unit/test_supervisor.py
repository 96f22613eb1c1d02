"""The supervisor: failed loops restart with backoff, are named while down, and counted."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import BusyLoadingError

from tenantplane.services.runtime.errors import EventLogUnavailable, InvalidRequest
from tenantplane.services.runtime.supervisor import Backoff, LoopHandle, Supervisor
from tenantplane.services.runtime.transient import is_transient

FAST = Backoff(first_s=0.05, max_s=0.2, stable_after_s=60)


async def test_a_crashing_loop_is_restarted_named_while_down_and_counted() -> None:
    # Given a loop that fails its first two runs, then runs until stopped
    stop, runs = asyncio.Event(), []

    async def body(loop: LoopHandle) -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise RuntimeError(f"boom {len(runs)}")
        await loop.stop.wait()

    supervisor = Supervisor(stop, FAST)
    supervisor.start("flaky", body)

    # When it has crashed once
    await asyncio.sleep(0.01)

    # Then readiness names the loop and its error while it waits to restart
    problem = await supervisor.readiness()
    assert problem is not None
    assert "flaky" in problem
    assert "RuntimeError: boom 1" in problem

    # And it is restarted until it runs, each restart counted
    for _ in range(100):
        if len(runs) == 3 and await supervisor.readiness() is None:
            break
        await asyncio.sleep(0.02)
    assert len(runs) == 3
    assert await supervisor.readiness() is None
    samples = {(s.family, s.labels): s.value for s in supervisor.samples()}
    assert samples[("tenantplane_loop_restarts", ("flaky",))] == 2
    assert samples[("tenantplane_loop_up", ("flaky",))] == 1

    stop.set()
    await supervisor.wait()


async def test_a_loop_that_returns_early_counts_as_a_crash() -> None:
    stop, runs = asyncio.Event(), []

    async def body(loop: LoopHandle) -> None:
        runs.append(1)
        if len(runs) > 1:
            await loop.stop.wait()

    supervisor = Supervisor(stop, FAST)
    supervisor.start("quitter", body)
    await asyncio.sleep(0.15)
    assert supervisor.loops["quitter"].restarts == 1
    assert "returned before the process stopped" in supervisor.loops["quitter"].last_error
    stop.set()
    await supervisor.wait()


async def test_transient_errors_are_retried_inside_the_loop_and_reported_as_degraded() -> None:
    # Given a step that meets Redis loading its data set three times
    stop, attempts = asyncio.Event(), []

    async def step() -> str:
        attempts.append(1)
        if len(attempts) <= 3:
            raise BusyLoadingError("Redis is loading the dataset in memory")
        return "done"

    loop = LoopHandle("steady", stop, FAST)
    seen: list[str | None] = []

    async def watch() -> None:
        while len(attempts) <= 3:
            seen.append(loop.problem())
            await asyncio.sleep(0.005)

    # When the loop runs it through `retrying`
    watcher = asyncio.create_task(watch())
    result = await loop.retrying(step, "admitting jobs")
    await watcher

    # Then it succeeds without a crash, having said why it was not working meanwhile
    assert result == "done"
    assert loop.restarts == 0
    assert any(p and "admitting jobs: BusyLoadingError" in p for p in seen)
    assert loop.problem() is None


async def test_a_fault_that_retrying_cannot_fix_reaches_the_supervisor() -> None:
    loop = LoopHandle("strict", asyncio.Event(), FAST)

    async def step() -> None:
        raise InvalidRequest("a bug, not an outage")

    with pytest.raises(InvalidRequest):
        await loop.retrying(step, "working")


async def test_retrying_gives_up_quietly_when_the_process_stops() -> None:
    stop = asyncio.Event()
    loop = LoopHandle("stopping", stop, FAST)

    async def step() -> str:
        stop.set()
        raise EventLogUnavailable("NATS is away")

    assert await loop.retrying(step, "working") is None


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (BusyLoadingError("loading"), True),
        (EventLogUnavailable("no answer"), True),
        (ConnectionRefusedError(), True),
        (InvalidRequest("bad"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_which_errors_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_an_error_caused_by_an_outage_is_transient() -> None:
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = ConnectionRefusedError("refused")
    assert is_transient(wrapped)
