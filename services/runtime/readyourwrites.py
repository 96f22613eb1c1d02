"""Waiting until a projection has applied a sequence (read your writes)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts.keys import Keys
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.errors import ProjectionTimeout


async def checkpoint(redis: aioredis.Redis, keys: Keys, projection: str) -> int:
    """The sequence a projection has applied up to."""
    return int(await redis.get(keys.checkpoint(projection)) or 0)


async def wait_applied(
    nc: NATS,
    redis: aioredis.Redis,
    subjects: Subjects,
    keys: Keys,
    projection: str,
    seq: int,
    timeout: float = 5.0,
) -> None:
    """Return once `projection` has applied `seq`.

    Listens to the projection's change notifications, checking the stored
    checkpoint once the server has the subscription, so none can slip past.

    Raises:
        ProjectionTimeout: not applied within `timeout` seconds.
    """
    reached = asyncio.Event()

    async def on_change(msg: object) -> None:
        if int(msg.data or 0) >= seq:  # type: ignore[attr-defined]
            reached.set()

    sub = await nc.subscribe(subjects.all_changes(projection), cb=on_change)
    try:
        # The server holds the subscription before the checkpoint is read: a
        # notification sent after that read cannot slip past.
        await nc.flush()
        if await checkpoint(redis, keys, projection) >= seq:
            return
        await asyncio.wait_for(reached.wait(), timeout)
    except TimeoutError:
        at = await checkpoint(redis, keys, projection)
        raise ProjectionTimeout(
            f"projection {projection} is at {at}, not yet {seq}, after {timeout:g}s"
        ) from None
    finally:
        await sub.unsubscribe()
