"""Serving commands on FastStream: typed handlers in the owning service's queue group.

A handler is `async (command) -> Outcome`. The wrapper validates the request
(a bad one gets an `invalid_request` reply, never a stack trace), turns
tenantplane errors into typed error replies, an outage into `unavailable`, and
logs anything else as an `internal` error with the correlation id. The secret
values a command carries (`secrets`) are redacted from every log line written
while it is handled and from the error text it answers with. Server side only:
clients send commands with `services.runtime.commands.CommandClient`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from tenantplane.contracts.commands import Command, CommandReply, ErrorCode
from tenantplane.contracts.errors import describe
from tenantplane.contracts.registry import MAX_EVENT_BYTES
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.commands import Outcome, reply_error
from tenantplane.services.runtime.errors import TenantplaneError
from tenantplane.services.runtime.metrics import COMMAND_DURATION
from tenantplane.services.runtime.redaction import hiding, redact
from tenantplane.services.runtime.transient import unavailable_from

C = TypeVar("C", bound=Command)
Handler = Callable[[C], Awaitable[Outcome]]
# The secret values a command carries, to be kept out of logs and error texts.
Secrets = Callable[[Command], Iterable[Any]]
log = structlog.get_logger(__name__)


def register(
    broker: NatsBroker,
    subjects: Subjects,
    command_cls: type[C],
    handler: Handler[C],
    max_concurrency: int = 64,
    *,
    secrets: Secrets | None = None,
) -> None:
    """Serve `command_cls` on its subject, in the owning service's queue group."""

    async def serve(request: Request) -> bytes:
        started = time.perf_counter()
        reply = await _handle(command_cls, handler, request, subjects, secrets)
        outcome = "ok" if reply.error is None else reply.error.code.value
        COMMAND_DURATION.labels(command_cls.name, outcome).observe(time.perf_counter() - started)
        return reply.model_dump_json().encode()

    subject = command_cls.served_on(subjects)
    broker.subscriber(
        subject,
        queue=command_cls.service,
        # Commands of different aggregates run concurrently; those of one aggregate
        # queue on its lock (aggregates.py), so ordering per aggregate holds.
        max_workers=max_concurrency,
        # The raw body: the command model parses it once (no JSON decode before it).
        decoder=_request,
        title=subject,
        description=(command_cls.__doc__ or "").strip(),
    )(serve)


@dataclass(frozen=True)
class Request:
    """A command request as it arrived: where it was sent, and its raw body."""

    subject: str
    body: bytes


async def _request(message: NatsMessage) -> Request:
    return Request(message.raw_message.subject, message.body)


async def _handle(
    command_cls: type[C],
    handler: Handler[C],
    request: Request,
    subjects: Subjects,
    secrets: Secrets | None,
) -> CommandReply:
    body = request.body
    if len(body) > MAX_EVENT_BYTES:
        return reply_error(ErrorCode.INVALID_REQUEST, f"request of {len(body)} bytes is too big")
    try:
        command = command_cls.model_validate_json(body)
    except ValidationError as e:
        return reply_error(ErrorCode.INVALID_REQUEST, describe(e))
    if command.subject(subjects) != request.subject:
        # The subject is what NATS permissions scope (a tenant, a pool): a body that
        # names something else is refused, never served.
        return reply_error(
            ErrorCode.INVALID_REQUEST,
            f"sent on {request.subject}, but the request is for {command.subject(subjects)}",
        )
    context = {
        "command": command_cls.name,
        "correlation_id": command.correlation_id or command.idempotency_key,
        "tenant_id": getattr(command, "tenant_id", None),
    }
    hidden = secrets(command) if secrets is not None else ()
    with structlog.contextvars.bound_contextvars(**context), hiding(hidden):
        try:
            outcome = await handler(command)
        except TenantplaneError as e:
            return _refused(e)
        except Exception as e:
            return _unexpected(command_cls, command, e)
    return outcome.reply()


def _unexpected(command_cls: type[C], command: C, error: Exception) -> CommandReply:
    """`unavailable` for a server outage the handler did not name, else `internal`."""
    outage = unavailable_from(error)
    if outage is not None:
        log.warning("command.unavailable", key=command.idempotency_key, error=outage.message)
        return _refused(outage)
    log.exception("command.failed", key=command.idempotency_key)
    return reply_error(ErrorCode.INTERNAL, f"{command_cls.name} failed; see the service log")


def _refused(error: TenantplaneError) -> CommandReply:
    """The error reply of `error`, its text redacted."""
    reply = error.to_reply_error()
    return CommandReply(ok=False, error=reply.model_copy(update={"message": redact(reply.message)}))
