"""An AsyncAPI 3.0 document being built: channels, operations and their components.

Every payload is a JSON Schema the contracts export (draft 2020-12). Its `$defs`
become the document's `components/schemas`, so every `$ref` resolves inside the
document. AsyncAPI reads a schema without a `schemaFormat` as its own dialect, a
superset of draft-07, so a schema is embedded only when it means the same there:
a `$ref` with sibling keywords is wrapped in `allOf` (draft-07 ignores a `$ref`'s
siblings), and a keyword of the later drafts that draft-07 would ignore
(`prefixItems`, `unevaluatedProperties`, ...) is refused rather than lost.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ASYNCAPI = "3.0.0"
JsonObject = dict[str, Any]
_SCHEMAS = "#/components/schemas/"
_LOCAL_REF = re.compile(r"^#/\$defs/(?P<name>[^/]+)$")
# Draft 2019-09 / 2020-12 keywords a draft-07 reader would silently ignore.
_NEWER_KEYWORDS = frozenset(
    {
        "prefixItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependentSchemas",
        "dependentRequired",
        "minContains",
        "maxContains",
        "$anchor",
        "$dynamicRef",
        "$dynamicAnchor",
        "$recursiveRef",
    }
)
# Keywords whose value maps names to schemas: the names are not keywords.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_KEY = re.compile(r"^[\w\d.\-_]+$")
# The channel of every reply: a NATS request names its reply subject (an inbox the
# requester subscribed to) in the protocol, neither in a header nor in the body, so
# no runtime expression can point at it; AsyncAPI's null address says "known only
# at run time".
INBOX = "replyInbox"
_INBOX_CHANNEL = {
    "address": None,
    "title": "The request's reply subject",
    "description": (
        "Where a request is answered: the reply subject the requester's NATS client "
        "set on the request (an inbox it subscribed to, `_INBOX.<unique id>` by "
        "default). NATS carries it in the protocol, not in a header or the payload, "
        "so its address is known only at run time. The reply is correlated with its "
        "request by this subject alone."
    ),
}


@dataclass
class Spec:
    """Collects the parts of one AsyncAPI document; a part added twice must be the same."""

    channels: JsonObject = field(default_factory=dict)
    operations: JsonObject = field(default_factory=dict)
    messages: JsonObject = field(default_factory=dict)
    schemas: JsonObject = field(default_factory=dict)
    correlation_ids: JsonObject = field(default_factory=dict)
    # The `$defs` placed under their own names, as they were exported (to share them).
    _shared: JsonObject = field(default_factory=dict)

    def payload(self, schema: Mapping[str, Any], namespace: str) -> JsonObject:
        """`schema` (exported, with its `$defs`) as a payload of this document.

        Its definitions join `components/schemas`, shared with earlier payloads
        when they are the same; when one of them differs from a definition of the
        same name, all of them go under `namespace`-prefixed names instead.
        """
        defs: Mapping[str, Any] = schema.get("$defs", {})
        clash = any(
            name in self._shared and self._shared[name] != body for name, body in defs.items()
        )
        names = {name: f"{namespace}.{name}" if clash else name for name in defs}
        for name, body in defs.items():
            if not clash:
                self._shared[name] = body
            self.add(self.schemas, names[name], _embedded(body, names))
        payload: JsonObject = _embedded(
            {k: v for k, v in schema.items() if k not in ("$schema", "$defs")}, names
        )
        return payload

    def message(self, key: str, message: JsonObject) -> JsonObject:
        """Add a message to the components; returns a reference to it."""
        self.add(self.messages, key, message)
        return {"$ref": f"#/components/messages/{key}"}

    def correlation(self, key: str, location: str, description: str) -> JsonObject:
        """Add a correlation id to the components; returns a reference to it."""
        self.add(self.correlation_ids, key, {"location": location, "description": description})
        return {"$ref": f"#/components/correlationIds/{key}"}

    def reply(self, key: str, message: JsonObject) -> JsonObject:
        """A reply object: `message`, sent to the request's reply subject."""
        ref = self.message(key, message)
        inbox = self.channels.setdefault(INBOX, {**_INBOX_CHANNEL, "messages": {}})
        self.add(inbox["messages"], key, ref)
        return {
            "channel": {"$ref": f"#/channels/{INBOX}"},
            "messages": [channel_message(INBOX, key)],
        }

    def channel(self, key: str, channel: JsonObject) -> JsonObject:
        """Add a channel; returns a reference to it."""
        self.add(self.channels, key, channel)
        return {"$ref": f"#/channels/{key}"}

    def operation(self, key: str, operation: JsonObject) -> None:
        """Add an operation."""
        self.add(self.operations, key, operation)

    @staticmethod
    def add(into: JsonObject, key: str, value: Any) -> None:
        """Put `value` at `key`; the same key for something else is a bug, never an overwrite."""
        if _KEY.fullmatch(key) is None:
            raise ValueError(f"AsyncAPI component key {key!r} must match {_KEY.pattern}")
        if into.setdefault(key, value) != value:
            raise ValueError(f"two different AsyncAPI parts named {key!r}")

    def document(self, info: JsonObject, servers: JsonObject) -> JsonObject:
        """The whole document."""
        components = {
            "schemas": self.schemas,
            "messages": self.messages,
            "correlationIds": self.correlation_ids,
        }
        return {
            "asyncapi": ASYNCAPI,
            "info": info,
            "defaultContentType": "application/json",
            "servers": servers,
            "channels": self.channels,
            "operations": self.operations,
            "components": {k: v for k, v in components.items() if v},
        }


def channel_message(channel: str, message: str) -> JsonObject:
    """A reference to a message of a channel (what operations and replies list)."""
    return {"$ref": f"#/channels/{channel}/messages/{message}"}


def described(cls: type[Any]) -> JsonObject:
    """A summary (the docstring's first paragraph) and, when there is more, a description."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    summary, _, rest = doc.partition("\n\n")
    found: JsonObject = {"summary": " ".join(summary.split())} if summary else {}
    if rest.strip():
        found["description"] = doc
    return found


def _embedded(schema: Any, names: Mapping[str, str]) -> Any:
    """`schema` with its `$defs` references pointing at `names` in the components."""
    if isinstance(schema, list):
        return [_embedded(item, names) for item in schema]
    if not isinstance(schema, dict):
        return schema
    newer = _NEWER_KEYWORDS & schema.keys()
    if newer:
        raise ValueError(f"a draft-07 reader would ignore {sorted(newer)} in {json.dumps(schema)}")
    out = {
        key: {k: _embedded(v, names) for k, v in value.items()}
        if key in _SCHEMA_MAPS and isinstance(value, dict)
        else _embedded(value, names)
        for key, value in schema.items()
        if key != "$ref"
    }
    if "$ref" not in schema:
        return out
    ref = {"$ref": _SCHEMAS + names[_local(schema["$ref"])]}
    return {"allOf": [ref], **out} if out else ref


def _local(ref: str) -> str:
    """The definition a `#/$defs/...` reference names (no other reference is exported)."""
    found = _LOCAL_REF.fullmatch(ref)
    if found is None:
        raise ValueError(f"unexpected $ref {ref!r} in an exported schema")
    return found["name"]
