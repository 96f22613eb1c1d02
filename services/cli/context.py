"""What every CLI command needs: settings, connections, and error reporting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from nats.aio.client import Client as NATS

from contracts import EVENTS
from contracts.errors import ContractError
from services.cli.output import err
from services.runtime.connections import connect_nats
from services.runtime.errors import TenantplaneError
from services.runtime.eventlog import EventLog
from services.runtime.localstate import NoSystemFound
from services.runtime.settings import Settings

T = TypeVar("T")

# Exit codes: 0 ok, 1 refused by the system (domain error), 2 bad usage, 3 unavailable.
EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning known errors into a message and an exit code."""
    try:
        return asyncio.run(coro)
    except NoSystemFound as e:
        _fail(str(e), EXIT_UNAVAILABLE)
    except TenantplaneError as e:
        code = EXIT_UNAVAILABLE if e.code.value == "unavailable" else EXIT_REFUSED
        _fail(f"{e.code.value}: {e.message}", code)
    except (ContractError, ValueError) as e:
        _fail(str(e), EXIT_USAGE)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[tuple[NATS, EventLog]]:
    """A NATS connection and the event log, closed at exit."""
    nc = await connect_nats(settings, "tenantctl")
    try:
        yield nc, EventLog(nc.jetstream(), settings.subjects, EVENTS)
    finally:
        await nc.close()


def settings_from(ctx: typer.Context) -> Settings:
    """The settings object the root callback read."""
    settings: Settings = ctx.obj
    return settings


Step = Callable[[], Awaitable[None]]
