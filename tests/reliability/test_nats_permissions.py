"""S1: every role by every subject family, against nats-server with the generated config.

The installation's roles (services/security/roles.py) are rendered as nats-server
authorization, a server is started with it, and each role connects with its own
credentials and tries each family: exactly the cells of the table below are
allowed; NATS itself refuses the rest. A client without credentials cannot
connect at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from pydantic import SecretStr

from tenantplane.contracts.subjects import Subjects
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.config import service as config_service
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.security.natsconfig import Credentials, authorization
from tenantplane.services.security.roles import DomainGrant, Role, RoleBook
from tests.support.cli import tenantctl
from tests.support.reporting import report
from tests.support.services import running_service

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

SUBJECTS = Subjects("tp")
BOOK = RoleBook(SUBJECTS, ["default"], [DomainGrant("billing", ("billing-balance",))])
ROLES = {role.name: role for role in BOOK.roles()}

# family -> (operation, subject)
FAMILIES: dict[str, tuple[str, str]] = {
    "publish lifecycle events": ("pub", SUBJECTS.lifecycle("acme")),
    "publish config events": ("pub", SUBJECTS.config("acme")),
    "publish route events": ("pub", SUBJECTS.route("acme", "billing")),
    "publish job events": ("pub", SUBJECTS.job("acme", "j1")),
    "publish billing events": ("pub", SUBJECTS.domain_event("billing", "acme", "invoice", "i1")),
    "publish orders events": ("pub", SUBJECTS.domain_event("orders", "acme", "order", "o1")),
    "send commands": ("pub", SUBJECTS.command("config", "config.set")),
    "serve config commands": ("sub", SUBJECTS.command("config", ">")),
    "request secrets as default": ("pub", SUBJECTS.secret_reveal("acme", "default")),
    "request secrets as another pool": ("pub", SUBJECTS.secret_reveal("acme", "vip")),
    "serve secrets": ("sub", SUBJECTS.all_secret_reveals()),
    "request billing's keys": ("pub", SUBJECTS.domain_key_request("acme", "billing")),
    "request orders' keys": ("pub", SUBJECTS.domain_key_request("acme", "orders")),
    "serve domain keys": ("sub", SUBJECTS.all_domain_key_requests()),
    "park config dead letters": ("pub", SUBJECTS.dead_letter("config", "acme")),
    "control projectors": ("pub", SUBJECTS.control("config", "redrive")),
    "listen to config changes": ("sub", SUBJECTS.all_changes("config")),
    "announce config changes": ("pub", SUBJECTS.changes("config", "acme")),
    "renew job leases": ("pub", SUBJECTS.job_leases("default")),
    "wake pools' workers": ("pub", SUBJECTS.job_queued("default")),
    "hear default's wake-ups": ("sub", SUBJECTS.job_queued("default")),
    "hear another pool's wake-ups": ("sub", SUBJECTS.job_queued("vip")),
    "read the control stream": ("pub", f"$JS.API.CONSUMER.CREATE.{SUBJECTS.control_stream}"),
    "read billing's stream": (
        "pub",
        f"$JS.API.CONSUMER.CREATE.{SUBJECTS.domain_stream('billing')}",
    ),
    "read the audit": ("pub", f"$JS.API.CONSUMER.CREATE.{SUBJECTS.audit_stream}"),
    "record reveals": ("pub", SUBJECTS.audit("acme", "reveal")),
    "read every inbox": ("sub", "_INBOX.>"),
    "read the config service's inbox": ("sub", "_INBOX_config.>"),
    "read everything": ("sub", ">"),
}

SERVICE = {"read the control stream"}
ALLOWED: dict[str, set[str]] = {
    "config": SERVICE | {"publish lifecycle events", "publish config events",
                         "serve config commands", "serve secrets", "serve domain keys",
                         "park config dead letters",
                         "announce config changes", "read the config service's inbox",
                         "record reveals", "read the audit"},
    "router": SERVICE | {"publish route events"},
    "scheduler": SERVICE | {"publish job events", "listen to config changes",
                            "wake pools' workers"},
    "pool-default": SERVICE | {"publish job events", "request secrets as default",
                               "listen to config changes", "renew job leases",
                               "hear default's wake-ups"},
    "reconciler": SERVICE | {"listen to config changes"},
    "operator": SERVICE | {"send commands", "control projectors", "listen to config changes",
                           "read billing's stream", "read the audit"},
    "reader": {"listen to config changes"},
    "domain-billing": {"publish billing events", "read billing's stream",
                       "request billing's keys"},
}  # fmt: skip


@contextlib.contextmanager
def authorized_nats(
    root: Path, book: RoleBook
) -> Iterator[tuple[embedded.ServerProcess, Credentials]]:
    """nats-server started with the authorization generated for `book`'s roles."""
    roles = book.roles()
    credentials = Credentials.new(roles)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "nats.conf"
    config.write_text(authorization(roles, credentials))
    server = embedded.nats_server(root, name="nats-authorized", include=config)
    server.start()
    try:
        yield server, credentials
    finally:
        server.stop()


@pytest.fixture(scope="module")
def authorized(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[embedded.ServerProcess, Credentials]]:
    with authorized_nats(tmp_path_factory.mktemp("authorized"), BOOK) as started:
        yield started


async def _allowed(url: str, role: Role, password: str, operation: str, subject: str) -> bool:
    """Whether NATS lets `role` do `operation` on `subject` (no permission error comes)."""
    refused: list[str] = []

    async def on_error(error: Exception) -> None:
        if "permissions violation" in str(error).lower():
            refused.append(str(error))

    nc: NATS = await nats.connect(
        url, user=role.name, password=password, inbox_prefix=role.inbox_prefix,
        error_cb=on_error, allow_reconnect=False,
    )  # fmt: skip
    try:
        if operation == "pub":
            await nc.publish(subject, b"{}")
        else:
            await nc.subscribe(subject)
        await nc.flush()
        await asyncio.sleep(0.05)
    finally:
        await nc.close()
    return not refused


@pytest.mark.parametrize("role", sorted(ALLOWED))
async def test_each_role_may_do_exactly_its_cells(
    authorized: tuple[embedded.ServerProcess, Credentials], role: str
) -> None:
    # Given the role's own credentials on a server with the generated authorization
    secured, credentials = authorized
    password = credentials.passwords[role]
    # When it tries every family
    allowed = {
        family
        for family, (operation, subject) in FAMILIES.items()
        if await _allowed(secured.url, ROLES[role], password, operation, subject)
    }
    # Then exactly its cells are allowed
    assert allowed == ALLOWED[role]
    report("S1", role=role, allowed=len(allowed), denied=len(FAMILIES) - len(allowed))


async def test_no_credentials_no_connection(
    authorized: tuple[embedded.ServerProcess, Credentials],
) -> None:
    # Given a client that speaks the NATS protocol with no credentials
    reader, writer = await asyncio.open_connection("127.0.0.1", authorized[0].port)
    try:
        await reader.readline()  # the server's INFO
        # When it connects
        writer.write(b'CONNECT {"verbose": false}\r\nPING\r\n')
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    # Then the server refuses it
    assert b"Authorization Violation" in answer


def as_role(
    settings: Settings, server: embedded.ServerProcess, role: str, password: str
) -> Settings:
    """`settings` connecting to `server` as `role`."""
    return settings.model_copy(
        update={
            "nats_url": server.url,
            "nats_user": role,
            "nats_password": SecretStr(password),
            "nats_inbox_prefix": ROLES[role].inbox_prefix,
        }
    )


async def test_the_config_service_and_an_operator_work_with_only_their_roles(
    tmp_path: Path, settings: Settings
) -> None:
    # Given the config service running as the config role (its streams, its projector)
    book = RoleBook(settings.subjects, ["default"])
    with authorized_nats(tmp_path / "nats", book) as (secured, credentials):
        await _config_service_and_operator(settings, secured, credentials)


async def _config_service_and_operator(
    settings: Settings, secured: embedded.ServerProcess, credentials: Credentials
) -> None:
    service = as_role(settings, secured, "config", credentials.passwords["config"])
    operator = as_role(settings, secured, "operator", credentials.passwords["operator"])
    probe = settings.subjects.command("config", RegisterTenant.name)
    async with running_service(service, config_service.run, probe, probe_settings=operator):
        # When an operator drives it with tenantctl
        steps = [
            ("tenant", "create", "acme", "-r", "onboard"),
            ("config", "set", "acme", "rate_limit=5"),
            ("config", "get", "acme", "rate_limit"),
            ("config", "history", "acme"),
            ("dlq", "list"),
        ]
        env = {
            "TENANTPLANE_NATS_USER": "operator",
            "TENANTPLANE_NATS_PASSWORD": credentials.passwords["operator"],
            "TENANTPLANE_NATS_INBOX_PREFIX": "_INBOX_operator",
        }
        results = [await asyncio.to_thread(tenantctl, operator, *step, env=env) for step in steps]
    # Then every step works, reads included (streams, consumers, direct gets, replies)
    for step, result in zip(steps, results, strict=True):
        assert result.returncode == 0, (step, result.stdout + result.stderr)
    assert "5" in results[2].stdout


async def test_the_printed_authorization_starts_nats_and_keeps_its_passwords(
    tmp_path: Path, settings: Settings
) -> None:
    # Given `tenantctl auth nats-config` run twice for the installation
    args = ("--data-dir", str(tmp_path), "auth", "nats-config", "--domain", "billing")
    first = await asyncio.to_thread(tenantctl, settings, *args)
    second = await asyncio.to_thread(tenantctl, settings, *args)
    assert first.returncode == 0, first.stderr
    # Then it prints the same block (passwords are created once, kept 0600)
    assert first.stdout == second.stdout
    stored = tmp_path / "nats-credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    # And nats-server runs with it: the operator connects with its stored password
    config = tmp_path / "nats.conf"
    config.write_text(first.stdout)
    server = embedded.nats_server(tmp_path / "nats", include=config).start()
    try:
        password = Credentials.load(stored).passwords["operator"]
        nc = await nats.connect(server.url, user="operator", password=password)
        await nc.close()
    finally:
        server.stop()
