"""JSON Schema of every contract, for publishers written in other languages.

Each schema accepts only what the services accept: every rule the models check is
in their types (patterns, bounds, `additionalProperties: false`), and this module's
generator writes the few that pydantic's default one leaves out. What no JSON
Schema can say is listed in docs/contracts.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic.json_schema import (
    DEFAULT_REF_TEMPLATE,
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
)
from pydantic_core import core_schema

from tenantplane.contracts.commands import Command, CommandReply
from tenantplane.contracts.domains import Domain
from tenantplane.contracts.envelope import Event, typed_envelope
from tenantplane.contracts.registry import EventRegistry
from tenantplane.contracts.values import INT_MAX, INT_MIN

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# RFC 3339 as pydantic reads it: years 0001-9999, no leap second (:60), an offset.
# The calendar (no 30 February) is left to the `date-time` format.
DATE_TIME_PATTERN = (
    r"^(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)


class ContractJsonSchema(GenerateJsonSchema):
    """Pydantic's generator, with the rules it leaves out written in.

    - A map with constrained keys refuses every other key (`propertyNames`), where
      pydantic's `patternProperties` alone lets any other key through.
    - A date-time carries the pattern of what pydantic parses.
    - An integer is bounded to 64 bits, as the wire reads it.
    - The document names its dialect (`$schema`).
    """

    def generate(
        self, schema: core_schema.CoreSchema, mode: JsonSchemaMode = "validation"
    ) -> JsonSchemaValue:
        generated = super().generate(schema, mode)
        return {"$schema": DIALECT, **generated}

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        generated = super().dict_schema(schema)
        patterns = generated.pop("patternProperties", None)
        if patterns:
            ((keys, values),) = patterns.items()
            generated["propertyNames"] = {**generated.get("propertyNames", {}), "pattern": keys}
            generated["additionalProperties"] = values
        return generated

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        generated = super().int_schema(schema)
        if "minimum" not in generated and "exclusiveMinimum" not in generated:
            generated["minimum"] = INT_MIN
        if "maximum" not in generated and "exclusiveMaximum" not in generated:
            generated["maximum"] = INT_MAX
        return generated

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        return {**super().datetime_schema(schema), "pattern": DATE_TIME_PATTERN}


def event_schema(event_cls: type[Event]) -> dict[str, Any]:
    """The schema of a whole envelope carrying `event_cls` as its data."""
    schema = typed_envelope(event_cls).model_json_schema(schema_generator=ContractJsonSchema)
    schema["title"] = f"{event_cls.event_type} v{event_cls.schema_version}"
    return schema


def command_schema(
    command_cls: type[Command], ref_template: str = DEFAULT_REF_TEMPLATE
) -> dict[str, Any]:
    """The schema of a command request."""
    schema = command_cls.model_json_schema(
        ref_template=ref_template, schema_generator=ContractJsonSchema
    )
    schema["title"] = f"{command_cls.service}.{command_cls.name}"
    return schema


def reply_schema(ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """The schema of the reply to every command."""
    return CommandReply.model_json_schema(
        ref_template=ref_template, schema_generator=ContractJsonSchema
    )


def event_path(event_cls: type[Event]) -> str:
    """Where an event's schema is written, relative to the export directory."""
    return f"events/{event_cls.event_type}.v{event_cls.schema_version}.json"


def command_path(command_cls: type[Command]) -> str:
    """Where a command's schema is written, relative to the export directory."""
    return f"commands/{command_cls.service}.{command_cls.name}.json"


def schemas(
    registry: EventRegistry, commands: Iterable[type[Command]], domains: Iterable[Domain] = ()
) -> dict[str, dict[str, Any]]:
    """Every schema by where it is written: events, commands, the reply, domains' events."""
    found = {event_path(e): event_schema(e) for e in registry.types.values()}
    found.update({command_path(c): command_schema(c) for c in commands})
    found["command-reply.json"] = reply_schema()
    for domain in domains:
        for event_cls in domain.registry.types.values():
            found[f"domains/{domain.name}/{event_path(event_cls)}"] = event_schema(event_cls)
    return found


def export(directory: Path, found: Mapping[str, dict[str, Any]]) -> int:
    """Write `found` (from `schemas`) under `directory`; returns how many files were written."""
    for relative, schema in found.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return len(found)
