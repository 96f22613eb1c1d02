"""What is particular to the Redis store."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from services.runtime.eventlog import EventLog
from services.runtime.settings import Settings
from tests.support.counting import digest
from tests.support.events import config_set
from tests.support.running import eventually, running
from tests.support.stores import redis_projector

pytestmark = pytest.mark.integration


async def test_checkpoint_lost_with_redis_data_rebuilds_from_the_log(
    nc: NATS, redis: aioredis.Redis, settings: Settings, event_log: EventLog
) -> None:
    first = await event_log.append_many([config_set("acme", n=i) for i in range(20)])
    projector = redis_projector(nc, redis, settings)
    async with running(projector):
        await projector.wait_for(first[-1].seq)
        # When Redis loses the read model and the checkpoint (as a restart without disk would)
        keys = [k async for k in redis.scan_iter(match=f"{settings.namespace}*")]
        await redis.delete(*keys)
        more = await event_log.append(config_set("acme", n=20))

        async def caught_up() -> bool:
            value = await redis.get(settings.keys.checkpoint("counting"))
            return value is not None and int(value) >= more.seq

        await eventually(caught_up)
    # Then the projector noticed the moved checkpoint and replayed everything once
    _, state = await digest(redis, settings.namespace)
    assert state["acme"]["events"] == "21"
