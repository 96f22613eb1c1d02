"""S4: a secret in a command appears in no log line, CLI output or reply, even when
the command fails in a way nobody planned for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from cryptography.fernet import Fernet
from nats.aio.client import Client as NATS
from sqlalchemy import insert

from bench.common import tenantctl_process, wait_serving
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config.secrets import tenant_keys
from tenantplane.services.runtime.database import create_engine
from tenantplane.services.runtime.logging import configure
from tenantplane.services.runtime.redaction import REDACTED, hiding, redact
from tenantplane.services.runtime.settings import Settings
from tests.conftest import MASTER_KEY
from tests.support.cli import tenantctl

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
PLAIN = "hunter2-plaintext-value"


async def test_an_internal_error_on_a_secret_leaves_it_in_no_log_or_reply(
    settings: Settings, nc: NATS, tmp_path: Path
) -> None:
    log_file = tmp_path / "config.log"
    with log_file.open("wb") as sink, tenantctl_process(settings, "serve", "config", output=sink):
        await wait_serving(nc, settings.subjects.command("config", RegisterTenant.name))
        registered = await asyncio.to_thread(tenantctl, settings, "tenant", "create", "acme")
        assert registered.returncode == 0, registered.stderr
        # Given a data key that unwraps to something that is not a key: sealing the next
        # secret fails deep inside the cryptography library, with the value in its frames
        await _plant_broken_key(settings, "acme")
        # When a secret is set
        done = await asyncio.to_thread(
            tenantctl, settings, "config", "set", "acme", f"secret.api_token={PLAIN}"
        )
    # Then the command fails as internal, and neither the CLI nor the log shows the value
    assert done.returncode != 0
    assert "internal" in done.stderr
    service_log = log_file.read_text()
    assert "command.failed" in service_log
    assert "Traceback" in service_log  # the failure is logged in full, but for the value
    for text in (done.stdout, done.stderr, service_log):
        assert PLAIN not in text


async def _plant_broken_key(settings: Settings, tenant_id: str) -> None:
    engine = create_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(tenant_keys).values(
                    key_id=f"{tenant_id}/broken",
                    namespace=settings.namespace,
                    tenant_id=tenant_id,
                    wrapped=Fernet(MASTER_KEY.encode()).encrypt(b"not a key").decode(),
                    created_at=datetime.now(UTC),
                )
            )
    finally:
        await engine.dispose()


def test_redaction_covers_every_form_of_a_structured_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("info", "json")
    log = structlog.get_logger("redaction-test")
    secret = {"user": "svc-user-77", "password": "pa55-word-xyz", "port": 54329}
    with hiding([secret]):
        text = redact("login svc-user-77 with pa55-word-xyz on 54329")
        try:
            raise ValueError(f"cannot open {secret!r}")
        except ValueError:
            log.exception("failed", detail=["pa55-word-xyz"], nested={"k": "svc-user-77"})
    assert text == f"login {REDACTED} with {REDACTED} on {REDACTED}"
    logged = capsys.readouterr().out
    assert "ValueError" in logged
    for value in ("svc-user-77", "pa55-word-xyz", "54329"):
        assert value not in logged
    # Outside the block nothing is hidden any more
    assert redact("pa55-word-xyz") == "pa55-word-xyz"
