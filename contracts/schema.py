"""JSON Schema of every contract, for publishers written in other languages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tenantplane.contracts.commands import Command, CommandReply
from tenantplane.contracts.envelope import Envelope, Event
from tenantplane.contracts.registry import EventRegistry


def event_schema(event_cls: type[Event]) -> dict[str, Any]:
    """The schema of a whole envelope carrying `event_cls` as its data."""
    schema = Envelope.model_json_schema()
    data = event_cls.model_json_schema()
    defs = {**schema.pop("$defs", {}), **data.pop("$defs", {})}
    schema["properties"]["data"] = data
    schema["properties"]["type"] = {"const": event_cls.event_type}
    schema["properties"]["schema_version"] = {"const": event_cls.schema_version}
    schema["title"] = f"{event_cls.event_type} v{event_cls.schema_version}"
    if defs:
        schema["$defs"] = defs
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def command_schema(command_cls: type[Command]) -> dict[str, Any]:
    """The schema of a command request."""
    schema = command_cls.model_json_schema()
    schema["title"] = f"{command_cls.service}.{command_cls.name}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def export(directory: Path, registry: EventRegistry, commands: tuple[type[Command], ...]) -> int:
    """Write every schema under `directory`; returns how many files were written."""
    written = 0
    for event_cls in registry.types.values():
        name = f"{event_cls.event_type}.v{event_cls.schema_version}.json"
        written += _write(directory / "events" / name, event_schema(event_cls))
    for command_cls in commands:
        name = f"{command_cls.service}.{command_cls.name}.json"
        written += _write(directory / "commands" / name, command_schema(command_cls))
    written += _write(directory / "command-reply.json", CommandReply.model_json_schema())
    return written


def _write(path: Path, schema: dict[str, Any]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return 1
