"""The AsyncAPI document of the services, generated from the registered handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from tenantplane.contracts.commands import Command, CommandReply
from tenantplane.contracts.schema import command_schema
from tenantplane.contracts.subjects import Subjects


def document(
    broker: NatsBroker, subjects: Subjects, commands: Sequence[type[Command]], version: str
) -> dict[str, Any]:
    """FastStream's AsyncAPI 3 document, with each command's request and reply schemas.

    Handlers take raw bytes (they validate and answer with typed errors
    themselves), so the payloads are filled in from the contracts.
    """
    spec: dict[str, Any] = (
        AsyncAPI(broker, title="tenantplane", version=version).to_specification().to_jsonable()
    )
    by_subject = {c.served_on(subjects): c for c in commands}
    messages = spec.setdefault("components", {}).setdefault("messages", {})
    reply = CommandReply.model_json_schema()
    for channel in spec.get("channels", {}).values():
        command_cls = by_subject.get(channel.get("address", ""))
        if command_cls is None:
            continue
        for ref in channel.get("messages", {}).values():
            name = unquote(ref["$ref"].rsplit("/", 1)[1])
            messages[name]["payload"] = command_schema(command_cls)
        channel["x-reply-payload"] = reply
    return spec
