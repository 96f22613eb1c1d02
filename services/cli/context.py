"""What every CLI command needs: settings and connections (failures.py reports errors)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import socket
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
import typer
from nats.aio.client import Client as NATS

from tenantplane.contracts.commands import Command, CommandReply
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings

T = TypeVar("T")


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop (about twice the message rate of asyncio's loop) when installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; what it raises is reported once, by `main`."""
    return run_loop(coro)


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[tuple[NATS, EventLog]]:
    """A NATS connection and the event log, closed at exit."""
    nc = await connect_nats(settings, "tenantctl")
    try:
        yield nc, EventLog(nc.jetstream(), settings.subjects)
    finally:
        await nc.close()


def settings_from(ctx: typer.Context) -> Settings:
    """The settings object the root callback read."""
    settings: Settings = ctx.obj
    return settings


def default_actor() -> str:
    """Who is acting: $TENANTPLANE_ACTOR, else user@host."""
    return os.environ.get("TENANTPLANE_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass
class Session:
    """Connections a command needs: NATS, Redis, the command client and the reader."""

    settings: Settings
    nc: NATS
    redis: aioredis.Redis
    commands: CommandClient
    reader: ConfigReader
    log: EventLog

    async def send(self, command: Command, *, wait: bool, projection: str) -> CommandReply:
        """Send `command`; with `wait`, return only once `projection` has applied it."""
        reply = await self.commands.send(command)
        if wait and reply.seq is not None:
            await wait_applied(
                self.nc,
                self.redis,
                self.settings.subjects,
                self.settings.keys,
                projection,
                reply.seq,
                self.settings.request_timeout_s,
            )
        return reply


@contextlib.asynccontextmanager
async def session(settings: Settings) -> AsyncIterator[Session]:
    """A `Session`, closed at exit."""
    async with connected(settings) as (nc, log):
        redis = connect_redis(settings)
        try:
            client = CommandClient(nc, settings.subjects, settings.request_timeout_s)
            reader = ConfigReader(redis, settings.keys)
            yield Session(settings, nc, redis, client, reader, log)
        finally:
            await redis.aclose()
