"""Commands: each one a `receive` operation of its service, answered on the requester's inbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tenantplane.contracts.commands import Command
from tenantplane.contracts.schema import command_path
from tenantplane.contracts.subjects import Subjects, matches
from tenantplane.services.asyncapi.addresses import Address, parameterized, stand_in_model
from tenantplane.services.asyncapi.spec import JsonObject, Spec, channel_message, described

REPLY = "command.reply"
REPLY_PATH = "command-reply.json"
NATS_BINDING = "0.1.0"


def add_commands(
    spec: Spec,
    subjects: Subjects,
    commands: Sequence[type[Command]],
    exported: Mapping[str, dict[str, Any]],
) -> None:
    """A channel, message and operation per command; one reply message for them all."""
    reply = spec.reply(REPLY, _reply_message(exported[REPLY_PATH], spec))
    correlation = spec.correlation(
        "command",
        "$message.payload#/correlation_id",
        "Optional. Every event the command appends carries it as its `correlation_id` "
        "(the command's `idempotency_key` when it is absent), and the idempotency key "
        "as its `causation_id`.",
    )
    for command_cls in commands:
        key = f"{command_cls.service}.{command_cls.name}"
        message = spec.message(
            key,
            {
                **described(command_cls),
                "name": key,
                "payload": spec.payload(
                    exported[command_path(command_cls)], command_path(command_cls)
                ),
                "correlationId": correlation,
            },
        )
        where = command_address(command_cls, subjects)
        channel = spec.channel(key, {**where.channel(), "title": key, "messages": {key: message}})
        spec.operation(
            key,
            {
                "action": "receive",
                "channel": channel,
                "messages": [channel_message(key, key)],
                "reply": reply,
                "bindings": {
                    "nats": {"queue": command_cls.service, "bindingVersion": NATS_BINDING}
                },
                **described(command_cls),
            },
        )


def command_address(command_cls: type[Command], subjects: Subjects) -> Address:
    """Where `command_cls` is sent, as the command builds its subject.

    Raises:
        ValueError: the service would not hear it there (its `served_on` filter
            does not match): the command's two subject methods disagree.
    """
    command, parameters = stand_in_model(command_cls)
    subject = command.subject(subjects)
    if not matches(command_cls.served_on(subjects), subject):
        raise ValueError(f"{command_cls.__name__} is sent on {subject}, served on another subject")
    return parameterized(subject, parameters)


def _reply_message(schema: dict[str, Any], spec: Spec) -> JsonObject:
    return {
        "name": REPLY,
        "title": "Command reply",
        "summary": "The reply to every command: the events it appended, or an error.",
        "description": (
            "`ok` with the appended `events` (`replayed` when the idempotency key had been "
            "applied before), or `error` with one of the codes of docs/contracts.md."
        ),
        "payload": spec.payload(schema, REPLY_PATH),
    }
