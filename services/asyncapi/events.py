"""Events: a channel per aggregate family, with a message per event type in its envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantplane.contracts.domains import DomainEvent
from tenantplane.contracts.envelope import Envelope, Event
from tenantplane.contracts.registry import EventRegistry
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.asyncapi.addresses import (
    Address,
    parameterized,
    stand_in,
    stand_in_model,
)
from tenantplane.services.asyncapi.spec import JsonObject, Spec, channel_message, described

# What the writers set on every append (JetStream's own header names).
HEADERS: JsonObject = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "The envelope's `event_id`: JetStream stores a retried append once.",
        },
        "Nats-Expected-Last-Subject-Sequence": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "Set by a writer that read the aggregate first: JetStream refuses "
            "the append unless this is still the last sequence of the subject (or of the "
            "filter in `Nats-Expected-Last-Subject-Sequence-Subject`).",
        },
        "Nats-Expected-Last-Subject-Sequence-Subject": {
            "type": "string",
            "description": "The filter the expected sequence is checked over (an aggregate "
            "spanning several subjects, e.g. a tenant's lifecycle and config).",
        },
    },
    "required": ["Nats-Msg-Id"],
}


def add_events(
    spec: Spec,
    subjects: Subjects,
    registry: EventRegistry,
    exported: Mapping[str, dict[str, Any]],
    paths: Mapping[type[Event], str],
) -> None:
    """A `send` operation per family (its channel, its event types); `paths` are export paths."""
    correlation = spec.correlation(
        "event",
        "$message.payload#/correlation_id",
        "Shared by every event one request caused (the command's `correlation_id`, else "
        "its idempotency key); `causation_id` names the command or event that caused it.",
    )
    families: dict[str, tuple[Address, JsonObject]] = {}
    for event_cls in registry.types.values():
        where = event_address(event_cls, subjects)
        key = channel_key(event_cls)
        found = families.setdefault(key, (where, {}))
        if found[0] != where:
            raise ValueError(
                f"{event_cls.event_type} goes to {where.address}, not {found[0].address}"
            )
        path = paths[event_cls]
        found[1][event_cls.event_type] = spec.message(
            event_cls.event_type,
            {
                **described(event_cls),
                "name": event_cls.event_type,
                "title": f"{event_cls.event_type} v{event_cls.schema_version}",
                "headers": HEADERS,
                "payload": spec.payload(exported[path], path),
                "correlationId": correlation,
            },
        )
    for key, (where, messages) in families.items():
        _add_family(spec, subjects, key, where, messages)


def _add_family(
    spec: Spec, subjects: Subjects, key: str, where: Address, messages: JsonObject
) -> None:
    stream = subjects.stream_for(where.filter())
    channel = spec.channel(
        key,
        {
            **where.channel(),
            "title": key,
            "description": f"Stored in the JetStream stream `{stream}`; each subject is one "
            "aggregate's log, in order.",
            "messages": messages,
        },
    )
    spec.operation(
        f"append.{key}",
        {
            "action": "send",
            "channel": channel,
            "messages": [channel_message(key, m) for m in messages],
            "summary": f"Appended by the service that owns the aggregate ({key}).",
        },
    )


def event_address(event_cls: type[Event], subjects: Subjects) -> Address:
    """Where an event of `event_cls` is appended, as `Subjects.for_event` builds it."""
    extra = {}
    if issubclass(event_cls, DomainEvent):
        extra = {event_cls.aggregate_id_field: "aggregateId"}
    data, parameters = stand_in_model(event_cls, extra)
    scope = "scope" if event_cls.platform_scoped else "tenant"
    envelope = Envelope.wrap(data, tenant_id=stand_in(scope), actor="asyncapi")
    return parameterized(subjects.for_event(envelope), [scope, *parameters])


def channel_key(event_cls: type[Event]) -> str:
    """The channel of an event's family: `events.<family>`, or `<domain>.<aggregate type>`."""
    if issubclass(event_cls, DomainEvent):
        return f"{event_cls.domain}.{event_cls.family}"
    return f"events.{event_cls.family}"
