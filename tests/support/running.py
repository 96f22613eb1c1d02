"""Run a projector in the background for the length of a test block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tenantplane.services.runtime.projector import Projector


@contextlib.asynccontextmanager
async def running(projector: Projector[Any]) -> AsyncIterator[Projector[Any]]:
    task = asyncio.create_task(projector.run())
    try:
        yield projector
    finally:
        await projector.stop()
        await asyncio.wait_for(task, 10)


async def eventually(check: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait until the async `check()` returns truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        await asyncio.sleep(interval)
