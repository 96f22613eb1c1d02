"""What the running processes publish beside events: change notifications, dead letters,
workers' lease heartbeats and the audit of secret reveals."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from tenantplane.contracts.jobs import LeaseRenewal
from tenantplane.contracts.schema import ContractJsonSchema
from tenantplane.contracts.subjects import REBUILT, Subjects
from tenantplane.services.asyncapi.addresses import Address, address
from tenantplane.services.asyncapi.spec import JsonObject, Spec, channel_message, described
from tenantplane.services.runtime import deadletters
from tenantplane.services.security.audit import Reveal


def add_notices(spec: Spec, subjects: Subjects) -> None:
    """Change notifications, dead letters, lease heartbeats and reveal records."""
    _add_changes(spec, subjects)
    _add_dead_letters(spec, subjects)
    _add_leases(spec, subjects)
    _add_audit(spec, subjects)


def _add_changes(spec: Spec, subjects: Subjects) -> None:
    where = address(subjects.changes, "projection", "tenant")
    message = {
        "name": "change",
        "title": "Projection applied",
        "summary": "A projection committed changes of one tenant, up to a stream sequence.",
        "description": "Caches and read-your-writes waiters refresh on it. Core NATS: "
        "not stored, so a reader that missed one reads the read model again.",
        "contentType": "text/plain",
        "payload": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "The stream sequence the projection has applied up to, in decimal.",
        },
    }
    tenant = f"A tenant id, or `{REBUILT}` after a rebuild was swapped in (any tenant changed)."
    _add_sent(spec, "changes", where, message, {"tenant": tenant})


def _add_dead_letters(spec: Spec, subjects: Subjects) -> None:
    where = address(subjects.dead_letter, "projection", "tenant")
    text = {"type": "string"}
    number = {"type": "string", "pattern": "^[0-9]+$"}
    headers = {
        "type": "object",
        "properties": {
            "Nats-Msg-Id": {**text, "description": "`<projection>:<original sequence>`: an "
                            "event is parked once however often it fails."},
            deadletters.H_SUBJECT: {**text, "description": "The subject the event was read from."},
            deadletters.H_SEQ: {**number, "description": "Its sequence in its stream."},
            deadletters.H_REASON: {**text, "description": "Why it could not be applied "
                                   "(at most 1000 characters)."},
            deadletters.H_BEHIND: {**number, "description": "Present when the event was "
                                   "parked only because an earlier event of its subject "
                                   "was: that event's sequence."},
        },
        "required": ["Nats-Msg-Id", deadletters.H_SUBJECT, deadletters.H_SEQ, deadletters.H_REASON],
    }  # fmt: skip
    message = {
        "name": "deadLetter",
        "title": "Dead letter",
        "summary": "An event a projection could not apply, parked with the reason.",
        "description": "`tenantctl dlq` lists, re-drives and discards them.",
        "contentType": "application/octet-stream",
        "headers": headers,
        "payload": {"description": "The parked message's bytes as they were read: usually an "
                    "event envelope, possibly not JSON at all."},
    }  # fmt: skip
    parked = f"A tenant id, or `{deadletters.UNKNOWN_TENANT}` when the subject names none."
    stored = f"Stored in the JetStream stream `{subjects.dead_letter_stream}`."
    _add_sent(spec, "deadLetters", where, message, {"tenant": parked}, stored)


def _add_leases(spec: Spec, subjects: Subjects) -> None:
    where = address(subjects.job_leases, "pool")
    schema = LeaseRenewal.model_json_schema(schema_generator=ContractJsonSchema)
    message = {
        **described(LeaseRenewal),
        "name": "leaseRenewal",
        "title": "Lease renewal",
        "payload": spec.payload(schema, "LeaseRenewal"),
    }
    channel = spec.channel(
        "leases",
        {
            **where.channel(),
            "title": "leases",
            "description": "Workers of the pool publish here (core NATS, never stored); "
            "the scheduler fails an attempt whose lease runs out.",
            "messages": {"leaseRenewal": spec.message("leaseRenewal", message)},
        },
    )
    spec.operation(
        "renewLeases",
        {
            "action": "receive",
            "channel": channel,
            "messages": [channel_message("leases", "leaseRenewal")],
            "summary": "The scheduler hears every pool's workers renew their attempts' leases.",
        },
    )


def _add_audit(spec: Spec, subjects: Subjects) -> None:
    where = address(lambda tenant: subjects.audit(tenant, "reveal"), "tenant")
    schema: dict[str, Any] = TypeAdapter(Reveal).json_schema(schema_generator=ContractJsonSchema)
    message = {
        **described(Reveal),
        "name": "reveal",
        "title": "Secrets revealed",
        "payload": spec.payload(schema, "Reveal"),
    }
    stored = (
        f"Stored in the JetStream stream `{subjects.audit_stream}` before the secrets leave "
        "the config service (`tenantctl secrets audit`)."
    )
    _add_sent(spec, "audit", where, message, {}, stored)


def _add_sent(
    spec: Spec,
    key: str,
    where: Address,
    message: JsonObject,
    parameters: dict[str, str],
    description: str = "Core NATS: not stored.",
) -> None:
    """A channel of one message and the `send` operation publishing it."""
    name = message["name"]
    channel = spec.channel(
        key,
        {
            **where.channel(parameters),
            "title": key,
            "description": description,
            "messages": {name: spec.message(name, message)},
        },
    )
    spec.operation(
        f"publish.{key}",
        {
            "action": "send",
            "channel": channel,
            "messages": [channel_message(key, name)],
            "summary": message["summary"],
        },
    )
