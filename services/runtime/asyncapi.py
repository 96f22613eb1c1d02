"""The AsyncAPI document of the services, generated from the registered handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from tenantplane.contracts.commands import Command
from tenantplane.contracts.schema import command_schema, reply_schema
from tenantplane.contracts.subjects import Subjects

# Where the payloads' shared definitions go, so every `$ref` resolves inside the document.
_REF_TEMPLATE = "#/components/schemas/{model}"


def document(
    broker: NatsBroker, subjects: Subjects, commands: Sequence[type[Command]], version: str
) -> dict[str, Any]:
    """FastStream's AsyncAPI 3 document, with each command's request and reply schemas.

    Handlers take raw bytes (they validate and answer with typed errors
    themselves), so the payloads are filled in from the contracts; the definitions
    they share are components of the document.
    """
    spec: dict[str, Any] = (
        AsyncAPI(broker, title="tenantplane", version=version).to_specification().to_jsonable()
    )
    by_subject = {c.served_on(subjects): c for c in commands}
    components = spec.setdefault("components", {})
    messages = components.setdefault("messages", {})
    shared = components.setdefault("schemas", {})
    reply = _embedded(reply_schema(_REF_TEMPLATE), shared)
    for channel in spec.get("channels", {}).values():
        command_cls = by_subject.get(channel.get("address", ""))
        if command_cls is None:
            continue
        for ref in channel.get("messages", {}).values():
            name = unquote(ref["$ref"].rsplit("/", 1)[1])
            messages[name]["payload"] = _embedded(
                command_schema(command_cls, _REF_TEMPLATE), shared
            )
        channel["x-reply-payload"] = reply
    return spec


def _embedded(schema: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """`schema` as a payload inside the document: its definitions moved to `shared`."""
    payload = {k: v for k, v in schema.items() if k not in ("$schema", "$defs")}
    shared.update(schema.get("$defs", {}))
    return payload
