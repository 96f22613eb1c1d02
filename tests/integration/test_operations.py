"""The operations surface on real servers: /healthz, /readyz, /metrics, `tenantctl status`."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from tenantplane.contracts import EVENTS
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.tenants import RegisterTenant, TenantRegistered
from tenantplane.services.config.projection import ConfigProjection
from tenantplane.services.jobs.aggregate import JobStatus
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import TenantplaneError
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.ops import OpsPortInUse, ops_server
from tenantplane.services.runtime.projector import Projector
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import RedisStore
from tests.support.cli import ACTOR, tenantctl
from tests.support.jobs import wait_for_status
from tests.support.ops import Samples, readyz, scrape, value
from tests.support.running import eventually, running

pytestmark = pytest.mark.integration


async def test_metrics_show_a_workload(
    ops_url: str, worker: None, client: CommandClient, event_log: EventLog
) -> None:
    before = await scrape(ops_url)

    await client.send(RegisterTenant(tenant_id="acme", display_name="Acme", **ACTOR))
    await client.send(SetConfig(tenant_id="acme", values={"rate_limit": 5}, **ACTOR))
    with pytest.raises(TenantplaneError):
        await client.send(SetConfig(tenant_id="nobody", values={"rate_limit": 5}, **ACTOR))
    jobs = JobLog(event_log)
    submitted = await jobs.submit("acme", "noop", {})
    done = await wait_for_status(jobs, "acme", submitted.job_id, JobStatus.SUCCEEDED)
    assert done.status is JobStatus.SUCCEEDED
    # The config read model has applied all three events.
    await eventually(lambda: _applied(ops_url, before, "config", 2), timeout=5)

    after = await scrape(ops_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    commands = "tenantplane_command_duration_seconds_count"
    assert grew(commands, command="tenant.register", outcome="ok") == 1
    assert grew(commands, command="config.set", outcome="ok") == 1
    assert grew(commands, command="config.set", outcome="tenant_not_found") == 1
    assert grew("tenantplane_projection_apply_latency_seconds_count", projection="config") >= 1
    finished = "tenantplane_jobs_finished_total"
    assert grew(finished, pool="default", kind="noop", outcome="succeeded") == 1
    assert value(after, "tenantplane_pool_capacity_jobs", pool="default") == 8
    assert value(after, "tenantplane_projection_lag_events", projection="config") == 0
    last_apply = "tenantplane_projection_last_apply_timestamp_seconds"
    assert value(after, last_apply, projection="config") > 0


async def _applied(url: str, before: Samples, projection: str, count: int) -> bool:
    after = await scrape(url)
    labels = {"projection": projection, "outcome": "applied"}
    name = "tenantplane_projector_events_total"
    return value(after, name, **labels) - value(before, name, **labels) >= count


async def test_readyz_lists_the_services_and_healthz_answers(ops_url: str, worker: None) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{ops_url}/healthz")).status_code == 200
        missing = await http.get(f"{ops_url}/nothing")
    # Ready once every service has replayed what it follows (the scheduler its jobs).
    await eventually(lambda: _ready(ops_url), timeout=10, interval=0.1)
    status, report = await readyz(ops_url)
    assert status == 200, report
    assert {"config", "scheduler", "worker-default"} <= set(report["services"])
    assert missing.status_code == 404


async def _ready(url: str) -> bool:
    status, _ = await readyz(url)
    return status == 200


async def test_a_projection_is_not_ready_until_it_has_replayed(
    event_log: EventLog, nc: NATS, redis: aioredis.Redis, settings: Settings
) -> None:
    for i in range(20):
        data = TenantRegistered(display_name=f"T{i}", plan="free")
        await event_log.append(Envelope.wrap(data, tenant_id=f"t{i}", actor="ops@test"))
    projection = ConfigProjection(settings.subjects, settings.keys)
    store = RedisStore(redis, settings.keys, projection.name, projection.owned_patterns())
    projector = Projector(projection, store, nc, subjects=settings.subjects, registry=EVENTS)
    check = projector.readiness(max_lag=5)
    assert "replaying" in (await check() or "")
    async with running(projector):
        await projector.wait_for(20)
        assert await check() is None


async def test_readyz_is_503_with_the_reason_when_a_check_fails(ops_url: str) -> None:
    from tenantplane.services.runtime.ops import HEALTH

    async def behind() -> str | None:
        return "7 events behind"

    remove = HEALTH.add("probe", "projection.x", behind)
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{ops_url}/readyz")
    finally:
        remove()
    assert response.status_code == 503
    assert response.json()["problems"]["probe.projection.x"] == "7 events behind"


async def test_a_taken_ops_port_fails_clearly(ops_url: str) -> None:
    port = int(ops_url.rsplit(":", 1)[1])
    with pytest.raises(OpsPortInUse, match="TENANTPLANE_OPS_PORT"):
        async with ops_server("127.0.0.1", port):
            pass


async def test_status_summarises_the_running_system(
    worker: None, router: None, job_settings: Settings
) -> None:
    result = await asyncio.to_thread(tenantctl, job_settings, "status", "-o", "json")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    services = {s["service"]: s for s in report["services"]}
    assert {"config", "router", "scheduler", "worker-default"} <= set(services)
    assert all(s["ready"] for s in services.values())
    assert {p["projection"] for p in report["projections"]} == {"config", "router", "jobs"}
    assert report["pools"][0]["pool"] == "default"


async def test_status_names_a_missing_service_and_exits_1(
    service: None, settings: Settings
) -> None:
    result = await asyncio.to_thread(tenantctl, settings, "status")
    assert result.returncode == 1
    assert "not running: router, scheduler" in result.stdout
