"""Runs the counting projection as its own process, for kill -9 tests.

python -m tests.support.projector_process NATS_URL REDIS_URL NAMESPACE
"""

from __future__ import annotations

import asyncio
import signal
import sys

from tenantplane.contracts import EVENTS
from tenantplane.services.runtime.connections import connect_nats, connect_redis
from tenantplane.services.runtime.projector import Projector
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import RedisStore
from tests.support.counting import CountingProjection


async def main(nats_url: str, redis_url: str, namespace: str) -> None:
    settings = Settings(nats_url=nats_url, redis_url=redis_url, namespace=namespace)
    nc = await connect_nats(settings, "counting-projector")
    redis = connect_redis(settings)  # a cluster client for a redis+cluster:// URL
    projection = CountingProjection(settings.subjects, namespace)
    store = RedisStore(redis, settings.keys, projection.name)
    projector = Projector(
        projection, store, nc, subjects=settings.subjects, registry=EVENTS, max_batch=200
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(projector.stop()))
    print("ready", flush=True)
    await projector.run()
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
