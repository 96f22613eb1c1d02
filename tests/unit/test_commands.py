"""Command plumbing on FastStream's in-memory broker: typed replies, never stack traces."""

from __future__ import annotations

import nats.errors
import orjson
import pytest
import redis.exceptions
from faststream.nats import NatsBroker, TestNatsBroker

from tenantplane.contracts import Subjects
from tenantplane.contracts.commands import CommandReply, ErrorCode, TenantCommand
from tenantplane.contracts.config import SetConfig
from tenantplane.services.config.service import serve_commands
from tenantplane.services.runtime.commands import Outcome
from tenantplane.services.runtime.errors import TenantNotFound
from tenantplane.services.runtime.eventlog import Appended

SUBJECTS = Subjects("tp")
SET = SUBJECTS.command("config", SetConfig.name)
# What the libraries raise when a leader changes or a server restarts under a handler.
OUTAGES: dict[str, Exception] = {
    "leader-change": nats.errors.TimeoutError(),
    "redis-restart": redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."),
    "redis-loading": redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
}


async def handle(command: TenantCommand) -> Outcome:
    if command.tenant_id == "ghost":
        raise TenantNotFound("no tenant ghost", tenant_id="ghost")
    if command.tenant_id == "boom":
        raise RuntimeError("a bug")
    if command.tenant_id in OUTAGES:
        raise OUTAGES[command.tenant_id]
    return Outcome((Appended("tp.evt.acme.config", 7, False, "e-1", "config.values_set"),))


@pytest.fixture
def broker() -> NatsBroker:
    broker = NatsBroker(logger=None)
    serve_commands(broker, SUBJECTS, handle)
    return broker


async def ask(broker: NatsBroker, body: dict[str, object] | bytes) -> CommandReply:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    async with TestNatsBroker(broker) as test_broker:
        response = await test_broker.request(payload, SET)
    return CommandReply.model_validate_json(response.body)


async def test_a_handled_command_replies_with_its_events(broker: NatsBroker) -> None:
    reply = await ask(broker, {"tenant_id": "acme", "values": {"a": 1}, "actor": "me"})
    assert reply.ok
    assert reply.seq == 7
    assert reply.events[0].type == "config.values_set"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{nope", "Invalid JSON"),
        ({"tenant_id": "acme", "values": {}, "actor": "me"}, "values"),
        ({"tenant_id": "a.b", "values": {"a": 1}, "actor": "me"}, "invalid tenant id"),
        ({"tenant_id": "acme", "values": {"a": 1}}, "actor: Field required"),
        ({"tenant_id": "acme", "values": {"a": 1}, "actor": "me", "extra": 1}, "extra"),
    ],
)
async def test_a_bad_request_is_an_invalid_request_reply(
    broker: NatsBroker, body: dict[str, object] | bytes, fragment: str
) -> None:
    reply = await ask(broker, body)
    assert reply.error is not None
    assert reply.error.code is ErrorCode.INVALID_REQUEST
    assert fragment in reply.error.message


async def test_a_domain_error_keeps_its_name_and_details(broker: NatsBroker) -> None:
    reply = await ask(broker, {"tenant_id": "ghost", "values": {"a": 1}, "actor": "me"})
    assert reply.error is not None
    assert reply.error.code is ErrorCode.TENANT_NOT_FOUND
    assert reply.error.details == {"tenant_id": "ghost"}


async def test_an_unexpected_failure_is_internal_without_a_trace(broker: NatsBroker) -> None:
    reply = await ask(broker, {"tenant_id": "boom", "values": {"a": 1}, "actor": "me"})
    assert reply.error is not None
    assert reply.error.code is ErrorCode.INTERNAL
    assert "Traceback" not in reply.error.message
    assert "a bug" not in reply.error.message


@pytest.mark.parametrize("tenant", sorted(OUTAGES))
async def test_a_server_outage_under_a_handler_is_unavailable_not_internal(
    broker: NatsBroker, tenant: str
) -> None:
    # Given a handler whose NATS or Redis call fails because the server is away
    # When the command is sent
    reply = await ask(broker, {"tenant_id": tenant, "values": {"a": 1}, "actor": "me"})
    # Then the caller is told to retry, not that the service broke
    assert reply.error is not None
    assert reply.error.code is ErrorCode.UNAVAILABLE
    assert "Traceback" not in reply.error.message
