"""Running a set of services in one process until a signal stops them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence

import structlog

from tenantplane.services.runtime.ops import ops_server
from tenantplane.services.runtime.settings import Settings

log = structlog.get_logger(__name__)

# A service is a coroutine function that runs until `stop` is set.
Service = Callable[[Settings, asyncio.Event], Awaitable[None]]


async def run_services(settings: Settings, services: Sequence[tuple[str, Service]]) -> None:
    """Run `services` side by side; SIGINT/SIGTERM or one service failing stops them all."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    for name, service in services:
        task = asyncio.ensure_future(service(settings, stop))
        task.set_name(name)
        tasks.add(task)
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for finished in done - {stopper}:
            if finished.exception() is not None:
                error = str(finished.exception())
                log.error("service.failed", service=finished.get_name(), error=error)
    finally:
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures and not isinstance(failures[0], asyncio.CancelledError):
            raise failures[0]


async def serve_process(
    settings: Settings,
    services: Sequence[tuple[str, Service]],
    on_listening: Callable[[str], None] = lambda url: None,
) -> None:
    """`run_services` behind the process's operations endpoint (/healthz, /readyz, /metrics).

    `on_listening` gets the endpoint's URL once it accepts connections.
    """
    async with ops_server(settings.ops_host, settings.ops_port) as url:
        on_listening(url)
        await run_services(settings, services)
