"""`tenantctl config apply` against the running config service."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.security.sealing import OneTimeKey
from tests.support.cli import tenantctl

pytestmark = pytest.mark.integration


async def apply(settings: Settings, directory: Path, *extra: str) -> list[dict[str, object]]:
    done = await asyncio.to_thread(
        tenantctl, settings, "config", "apply", str(directory), "-o", "json", *extra
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = orjson.loads(done.stdout)
    return rows


async def test_apply_creates_tenants_then_changes_only_what_files_change(
    settings: Settings, service: None, redis: aioredis.Redis, tmp_path: Path
) -> None:
    # Given a directory of 50 tenants with a common file
    (tmp_path / "_common.yaml").write_text("rate_limit: 100\n")
    for i in range(50):
        (tmp_path / f"tenant-{i:02d}.yaml").write_text(f"_tenant: {{plan: p{i % 3}}}\nn: {i}\n")
    # When it is applied (after a dry run)
    assert len(await apply(settings, tmp_path, "--dry-run")) == 150
    assert await ConfigReader(redis, settings.keys).tenants() == []
    first = await apply(settings, tmp_path)
    # Then all 50 exist with merged config; a second apply changes nothing
    assert sum(1 for row in first if row["action"] == "create") == 50
    reader = ConfigReader(redis, settings.keys)
    assert len(await reader.tenants()) == 50
    assert await reader.config("tenant-07") == {"rate_limit": 100, "n": 7}
    assert await apply(settings, tmp_path) == []
    # When one file is edited, only that tenant's keys change
    (tmp_path / "tenant-07.yaml").write_text("_tenant: {plan: p1}\nn: 700\nextra: true\n")
    third = await apply(settings, tmp_path)
    assert {(r["tenant"], r["action"], r["key"]) for r in third} == {
        ("tenant-07", "change", "n"),
        ("tenant-07", "add", "extra"),
    }
    assert await reader.config("tenant-07") == {"rate_limit": 100, "n": 700, "extra": True}


async def test_a_secret_in_a_file_converges_and_is_never_shown(
    settings: Settings, service: None, tmp_path: Path
) -> None:
    # Given a tenant whose properties file holds a secret
    plain = "TOPSECRET-123-value"
    tenant = tmp_path / "acme.properties"
    tenant.write_text(f"rate_limit=5\nsecret.reporting_api_key={plain}\n")
    dry = await apply(settings, tmp_path, "--dry-run")
    first = await apply(settings, tmp_path)
    # Then the first apply sets it, and no diff prints its value
    assert ("secret", "secret.reporting_api_key") in {(r["action"], r["key"]) for r in first}
    assert plain not in orjson.dumps([dry, first]).decode()
    # And applying the same file again changes nothing, the secret included
    assert await apply(settings, tmp_path) == []
    # When the secret changes in the file, only it changes, still unshown
    tenant.write_text("rate_limit=5\nsecret.reporting_api_key=ROTATED-456-value\n")
    rotated = await apply(settings, tmp_path)
    assert [(r["action"], r["key"], r["new"]) for r in rotated] == [
        ("secret", "secret.reporting_api_key", "<secret changed>")
    ]
    assert "ROTATED-456-value" not in orjson.dumps(rotated).decode()


async def test_a_sealed_secret_can_be_committed_and_only_the_service_opens_it(
    settings: Settings, service: None, tmp_path: Path
) -> None:
    # Given a secret sealed with tenantctl into a properties file
    plain = "COMMITTED-secret-77"
    sealed = await asyncio.to_thread(tenantctl, settings, "secrets", "seal", plain)
    assert sealed.returncode == 0, sealed.stderr
    text = sealed.stdout.strip()
    assert text.startswith("sealed:v1:")
    assert plain not in text
    (tmp_path / "acme.properties").write_text(f"rate_limit=5\nsecret.api_key={text}\n")
    # When it is applied, the service opens it: the tenant's secret is the value
    first = await apply(settings, tmp_path)
    assert ("secret", "secret.api_key") in {(r["action"], r["key"]) for r in first}
    sdk = await AsyncConfigClient.connect(settings)
    try:
        assert await sdk.secrets("acme") == {"secret.api_key": plain}
    finally:
        await sdk.close()
    # And the same file again changes nothing (sealing again gives other text, same value)
    assert await apply(settings, tmp_path) == []
    again = await asyncio.to_thread(tenantctl, settings, "secrets", "seal", plain)
    assert again.stdout.strip() != text
    (tmp_path / "acme.properties").write_text(
        f"rate_limit=5\nsecret.api_key={again.stdout.strip()}\n"
    )
    assert await apply(settings, tmp_path) == []
    # And text sealed to another installation's key, or in a key that is no secret, is refused
    other = OneTimeKey.new().public
    foreign = await asyncio.to_thread(
        tenantctl, settings, "secrets", "seal", plain, "--public-key", other
    )
    for line in (f"secret.api_key={foreign.stdout.strip()}", f"note={text}"):
        (tmp_path / "acme.properties").write_text(f"rate_limit=5\n{line}\n")
        refused = await asyncio.to_thread(
            tenantctl, settings, "config", "apply", str(tmp_path), "-o", "json"
        )
        assert refused.returncode == 1, refused.stdout
        assert "another key" in refused.stderr or "no secret key" in refused.stderr
        assert plain not in refused.stdout + refused.stderr


async def test_a_seed_style_directory_with_a_sealed_secret_converges(
    settings: Settings, service: None, tmp_path: Path
) -> None:
    # Given tenants/<env>/<tenant>.properties over a _common.properties, one secret sealed
    sealed = await asyncio.to_thread(tenantctl, settings, "secrets", "seal", "REPORTS-key-9")
    prod = tmp_path / "prod"
    prod.mkdir()
    (tmp_path / "_common.properties").write_text("rate_limit=10\njobs.max_concurrency=4\n")
    (prod / "acme.properties").write_text(
        f"rate_limit=50\nsecret.reporting_api_key={sealed.stdout.strip()}\n"
    )
    (prod / "beta.properties").write_text("features.beta=true\n")
    # When it is applied twice
    first = await apply(settings, tmp_path, "--env", "prod")
    # Then the first creates both tenants, the second reports no changes
    assert {(r["tenant"], r["action"]) for r in first} >= {("acme", "create"), ("beta", "create")}
    assert await apply(settings, tmp_path, "--env", "prod") == []
    # And a deleted file shows its tenant in the diff (and prunes it: suspended)
    (prod / "beta.properties").unlink()
    pruned = await apply(settings, tmp_path, "--env", "prod")
    assert [(r["tenant"], r["action"]) for r in pruned] == [("beta", "suspend")]


def _git(directory: Path, *args: str) -> str:
    identity = ["-c", "user.name=Ada Ops", "-c", "user.email=ada@example.com"]
    done = subprocess.run(
        ["git", "-C", str(directory), *identity, *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


async def test_a_deleted_file_suspends_its_tenant_and_events_name_the_commit(
    settings: Settings, service: None, event_log: EventLog, tmp_path: Path
) -> None:
    # Given two tenants' files committed in a Git repository
    for tenant in ("acme", "beta"):
        (tmp_path / f"{tenant}.properties").write_text("rate_limit=5\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "two tenants")
    commit = _git(tmp_path, "rev-parse", "HEAD")
    await apply(settings, tmp_path)
    # Then every event of the apply names the commit and its author
    events = [e async for e in event_log.read(settings.subjects.lifecycle("acme"))]
    assert (
        events[0].envelope.reason
        == f"gitops apply (git {commit[:12]} by Ada Ops <ada@example.com>)"
    )
    assert events[0].envelope.correlation_id == f"git:{commit}"
    # When beta's file is deleted, the diff lists it; with --no-prune it stays active
    (tmp_path / "beta.properties").unlink()
    kept = await apply(settings, tmp_path, "--no-prune")
    assert [(r["tenant"], r["action"]) for r in kept] == [("beta", "no file")]
    # And an apply (pruning, the default) suspends it, the change in the files noted
    pruned = await apply(settings, tmp_path)
    assert [(r["tenant"], r["action"]) for r in pruned] == [("beta", "suspend")]
    beta = [e async for e in event_log.read(settings.subjects.lifecycle("beta"))]
    assert beta[-1].envelope.type == "tenant.suspended"
    assert f"git {commit[:12]}+changes by Ada Ops" in beta[-1].envelope.reason
    # And a suspended tenant without a file is not listed again
    assert await apply(settings, tmp_path) == []


async def test_an_invalid_directory_applies_nothing(
    settings: Settings, service: None, redis: aioredis.Redis, tmp_path: Path
) -> None:
    (tmp_path / "good.yaml").write_text("rate_limit: 5\n")
    (tmp_path / "bad.properties").write_text("rate_limit=-1\n")
    done = await asyncio.to_thread(tenantctl, settings, "config", "apply", str(tmp_path))
    assert done.returncode == 2  # the files are the caller's input: bad usage
    assert "bad.properties:1: rate_limit: -1 is below the minimum 0" in done.stderr
    assert await ConfigReader(redis, settings.keys).tenants() == []
