"""`tenantctl dev up`, the README's first command: the whole system, least privilege on.

Started as a user would, in its own process with nothing but a data dir; then
driven with `tenantctl --data-dir`, which finds the system and logs in as the
operator.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

import tenantplane as tp
from examples.billing import service as billing_service
from examples.billing.invoices import invoices, issue, pay
from tenantplane.services.runtime.localstate import STATE_FILE
from tenantplane.services.security.natsconfig import Credentials
from tests.support.devup import BILLING, clean_env, running_dev_up

pytestmark = pytest.mark.integration


@pytest.fixture
def dev_up(tmp_path: Path) -> Iterator[Path]:
    """`tenantctl dev up` on a fresh data dir, until the test ends; yields the data dir."""
    data = tmp_path / "tp"
    with running_dev_up(
        data, tmp_path / "dev-up.log", "--data-dir", str(data), "--domain", BILLING
    ):
        yield data


def test_dev_up_started_again_listens_where_it_did(tmp_path: Path) -> None:
    data, log = tmp_path / "tp", tmp_path / "dev-up.log"
    with running_dev_up(data, log, "--data-dir", str(data)) as first:
        pass
    with running_dev_up(data, log, "--data-dir", str(data)) as again:
        pass
    assert (again["nats_url"], again["redis_url"]) == (first["nats_url"], first["redis_url"])
    assert f"export TENANTPLANE_DATA_DIR={data.resolve()}" in log.read_text()


def _tenantctl(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantplane.services.cli", "--data-dir", str(data), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_dev_up_admits_only_its_users_and_runs_jobs_in_dedicated_pools(
    dev_up: Path,
) -> None:
    state = json.loads((dev_up / STATE_FILE).read_text())
    # A client without credentials is refused by NATS itself
    anonymous = NATS()
    try:
        with pytest.raises(NatsError, match="Authorization Violation"):
            await anonymous.connect(state["nats_url"], allow_reconnect=False, connect_timeout=2)
    finally:
        await anonymous.close()
    # And a user may not step outside its role: the read-only reader cannot append
    credentials = Credentials.load(Path(state["nats_credentials"]))
    assert (dev_up / "nats-credentials.json").stat().st_mode & 0o777 == 0o600
    reader = await nats.connect(
        state["nats_url"], user="reader", password=credentials.passwords["reader"]
    )
    try:
        with pytest.raises(Exception, match=r"timeout|Permissions|no responders"):
            await reader.jetstream().publish("tp.evt.acme.config", b"{}", timeout=1)
    finally:
        await reader.close()
    # The operator's tenantctl works: a tenant in a dedicated pool, and a job in it
    steps = [
        ("tenant", "create", "acme"),
        ("config", "set", "acme", "jobs.pool=gold", "secret.token=s3cr3t-value"),
    ]
    for step in steps:
        done = await asyncio.to_thread(_tenantctl, dev_up, *step)
        assert done.returncode == 0, done.stderr
    submitted = await asyncio.to_thread(
        _tenantctl, dev_up, "job", "submit", "acme", "noop", "-o", "json"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    # The reconciler starts gold's worker as gold's own NATS user (made and loaded live)
    deadline = time.monotonic() + 45
    while True:
        shown = await asyncio.to_thread(
            _tenantctl, dev_up, "job", "show", "acme", job_id, "-o", "json"
        )
        job = json.loads(shown.stdout) if shown.returncode == 0 else {}
        if job.get("status") == "succeeded":
            break
        assert time.monotonic() < deadline, f"job not done: {shown.stdout} {shown.stderr}"
        await asyncio.sleep(0.5)
    assert job["pool"] == "gold"
    assert "pool-gold" in Credentials.load(Path(state["nats_credentials"])).passwords


async def test_a_domain_service_runs_as_its_own_user_and_its_projections_answer_operators(
    dev_up: Path, tmp_path: Path
) -> None:
    # Given the billing example run as billing's user (its password from the data dir)
    settings = tp.Settings(
        data_dir=dev_up,
        nats_user="domain-billing",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}",
    )
    stop = asyncio.Event()
    service = asyncio.create_task(billing_service.run(settings, stop))
    try:
        # When it publishes an invoice and its payment
        async with billing_service.billing(settings) as connected:
            accounts = invoices(connected.store)
            await accounts.execute("acme", "inv-1", issue("globex", 1200), actor="api")
            await accounts.execute("acme", "inv-1", pay(1200), actor="api")
        # Then the operator's tenantctl sees both projections running and caught up
        deadline = time.monotonic() + 20
        while True:
            shown = await asyncio.to_thread(
                _tenantctl, dev_up, "projection", "status", "-o", "json"
            )
            rows = {r["projection"]: r for r in json.loads(shown.stdout or "[]")}
            billing = [rows.get(n, {}) for n in ("billing-balance", "billing-billing_ledger")]
            if all(r.get("checkpoint") == 2 and r.get("running") for r in billing):
                break
            assert time.monotonic() < deadline, shown.stdout + shown.stderr
            await asyncio.sleep(0.3)
        # And may not write outside billing's stream
        nc = await tp.connect_nats(settings, "billing-test")
        try:
            with pytest.raises(Exception, match=r"timeout|Permissions|no responders"):
                await nc.jetstream().publish("tp.evt.acme.config", b"{}", timeout=1)
        finally:
            await nc.close()
    finally:
        stop.set()
        await asyncio.wait_for(service, 20)


async def test_dev_up_keeps_the_read_models_on_a_redis_cluster_and_jobs_beside_it(
    tmp_path: Path, cluster_url: str
) -> None:
    # Given the system started with its read models on a Redis Cluster (one node named)
    data = tmp_path / "tp"
    node = cluster_url.split(",")[0]
    with running_dev_up(
        data, tmp_path / "dev-up.log", "--data-dir", str(data), "--redis-url", node
    ) as state:
        assert state["redis_url"] == node
        assert state["jobs_redis_url"].startswith("redis://")
        # When an operator onboards a tenant, routes a service and runs a job
        steps = [
            ("tenant", "create", "acme"),
            ("config", "set", "acme", "rate_limit=7"),
            ("route", "register", "billing", "v1", "--upstream", "http://h:1"),
            ("route", "default", "billing", "v1"),
        ]
        for step in steps:
            done = await asyncio.to_thread(_tenantctl, data, *step)
            assert done.returncode == 0, done.stderr
        submitted = await asyncio.to_thread(
            _tenantctl, data, "job", "submit", "acme", "noop", "--wait", "-o", "json"
        )
        # Then config and routes are read back from the cluster, and the job ran
        assert submitted.returncode == 0, submitted.stderr
        assert json.loads(submitted.stdout)["status"] == "succeeded"
        got = await asyncio.to_thread(_tenantctl, data, "config", "get", "acme", "rate_limit")
        assert "7" in got.stdout
        resolved = await asyncio.to_thread(_tenantctl, data, "route", "resolve", "billing", "acme")
        assert "v1" in resolved.stdout
        namespace_keys = await asyncio.to_thread(
            _tenantctl, data, "redis", "HGET", "tp:tenant:{acme}:config", "rate_limit"
        )
        assert namespace_keys.stdout.strip() == "7"
