"""R6: NATS with user/password and TLS, end to end; a wrong credential fails clearly.

A nats-server of its own requires TLS (a test CA) and a user/password. The
config service serves commands over that connection, the CLI sends one, and
the SDK reads the result. A wrong password and an untrusted server certificate
are refused with a one-line error naming the cause, never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config import service as config_service
from tenantplane.services.config.sdk import AsyncConfigClient
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.errors import EventLogUnavailable
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import tenantctl
from tests.support.services import running_service
from tests.support.tls import Certificates, make_certificates

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

USER, PASSWORD = "svc", "s3cret-pass"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def secured_nats(tmp_path: Path, certificates: Certificates) -> Iterator[embedded.ServerProcess]:
    server = embedded.nats_server(
        tmp_path / "secured",
        name="nats-secured",
        extra=[
            "--tls", "--tlscert", str(certificates.cert), "--tlskey", str(certificates.key),
            "--user", USER, "--pass", PASSWORD,
        ],
    ).start()  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def secured(
    settings: Settings, secured_nats: embedded.ServerProcess, certificates: Certificates
) -> Settings:
    return settings.model_copy(
        update={
            "nats_url": secured_nats.url,
            "nats_user": USER,
            "nats_password": SecretStr(PASSWORD),
            "nats_tls_ca_file": certificates.ca,
        }
    )


def env_of(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {
        "TENANTPLANE_NATS_USER": USER,
        "TENANTPLANE_NATS_PASSWORD": PASSWORD,
        "TENANTPLANE_NATS_TLS_CA_FILE": str(settings.nats_tls_ca_file),
    }
    return {**env, **overrides}


async def test_services_cli_and_sdk_work_over_tls_with_credentials(secured: Settings) -> None:
    probe = secured.subjects.command("config", RegisterTenant.name)
    async with running_service(secured, config_service.run, probe):
        created = await asyncio.to_thread(
            tenantctl, secured, "tenant", "create", "acme", env=env_of(secured)
        )
        assert created.returncode == 0, created.stderr
        set_value = await asyncio.to_thread(
            tenantctl, secured, "config", "set", "acme", "rate_limit=9", env=env_of(secured)
        )
        assert set_value.returncode == 0, set_value.stderr
        sdk = await AsyncConfigClient.connect(secured)
        try:
            assert (await sdk.get_config("acme")).get_int("rate_limit") == 9
        finally:
            await sdk.close()
        # The server accepts nothing but TLS: a plain connection is turned away.
        plain = secured.model_copy(update={"nats_tls_ca_file": None})
        with pytest.raises(EventLogUnavailable):
            await connect_nats(plain, "plain")


async def test_a_wrong_password_fails_with_a_clear_error(secured: Settings) -> None:
    wrong = secured.model_copy(update={"nats_password": SecretStr("nope")})
    with pytest.raises(EventLogUnavailable, match=r"(?i)authorization"):
        await connect_nats(wrong, "wrong")
    result = await asyncio.to_thread(
        tenantctl, secured, "tenant", "list",
        env=env_of(secured, TENANTPLANE_NATS_PASSWORD="nope"),
    )  # fmt: skip
    assert result.returncode == 3
    assert "error: unavailable: cannot connect to NATS" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


async def test_an_untrusted_server_certificate_is_refused(
    secured: Settings, tmp_path: Path
) -> None:
    other_ca = make_certificates(tmp_path / "other").ca
    untrusted = secured.model_copy(update={"nats_tls_ca_file": other_ca})
    with pytest.raises(EventLogUnavailable, match=r"(?i)certificate"):
        await connect_nats(untrusted, "untrusted")
