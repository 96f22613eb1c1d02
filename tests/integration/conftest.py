"""Fixtures for integration tests: a running config service and a command client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from contracts.tenants import RegisterTenant
from services.config import service as config_service
from services.runtime.commands import CommandClient
from services.runtime.connections import connect_nats
from services.runtime.settings import Settings


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(config_service.run(settings, stop))
    await _until_serving(settings)
    yield
    stop.set()
    await asyncio.wait_for(task, 10)


async def _until_serving(settings: Settings) -> None:
    nc = await connect_nats(settings, "probe")
    subject = settings.subjects.command("config", RegisterTenant.name)
    try:
        for _ in range(200):
            try:
                await nc.request(subject, b"{}", timeout=0.1)
                return
            except Exception:
                await asyncio.sleep(0.02)
        raise AssertionError("config service did not start")
    finally:
        await nc.close()


@pytest.fixture
def client(nc: NATS, settings: Settings, service: None) -> CommandClient:
    return CommandClient(nc, settings.subjects)
