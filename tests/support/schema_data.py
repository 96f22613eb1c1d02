"""Hypothesis strategies of JSON documents from a JSON Schema (the keywords exports use).

hypothesis-jsonschema would do this, but its 0.23 release does not run on the
Hypothesis this project pins. This covers what tenantplane's exported schemas
use; a keyword it does not know fails loudly rather than being skipped. Tests
check every document it draws against the schema with a real validator, so a
mistake here shows as a failure, never as a pass.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests.support.schemas import ecma

# Recursive definitions (a JSON value inside a JSON value) stop this deep.
MAX_DEPTH = 3
_IGNORED = {"$schema", "$defs", "title", "description", "default"}
_KNOWN = {
    "$ref", "anyOf", "allOf", "const", "enum", "type", "pattern", "format", "minLength",
    "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "properties",
    "required", "additionalProperties", "propertyNames", "minProperties", "maxProperties",
    "items", "minItems", "maxItems",
}  # fmt: skip
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents valid against `schema` (a whole exported schema, with its `$defs`)."""
    return _Drawer(schema.get("$defs", {})).of(schema, 0)


class _Drawer:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def of(self, schema: Any, depth: int) -> st.SearchStrategy[Any]:
        if schema is True or schema == {}:
            return ANY_JSON
        unknown = set(schema) - _KNOWN - _IGNORED
        if unknown:
            raise NotImplementedError(f"schema keywords {sorted(unknown)}")
        if "$ref" in schema:
            name = schema["$ref"].removeprefix("#/$defs/")
            return st.deferred(lambda: self.of(self.defs[name], depth + 1))
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if depth < MAX_DEPTH or not _recurses(b)]
            return st.one_of([self.of(b, depth) for b in branches])
        if "allOf" in schema:
            return self._all_of(schema["allOf"], depth)
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return st.one_of([self._typed(kind, schema, depth) for kind in kinds])

    def _all_of(self, parts: list[Any], depth: int) -> st.SearchStrategy[Any]:
        # What the exports combine: a JSON value and a config key's rules.
        plain = {k: v for p in parts if "$ref" not in p for k, v in p.items()}
        if "type" in plain or "enum" in plain:
            return self.of(plain, depth)
        (ref,) = [p for p in parts if "$ref" in p]
        return self.of(ref, depth)

    def _typed(self, kind: str, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "string":
            return _string(schema)
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "array":
            items = self.of(schema.get("items", True), depth)
            return st.lists(
                items,
                min_size=schema.get("minItems", 0),
                max_size=min(schema.get("maxItems", 3), 3),
            )
        if kind == "object":
            return self._object(schema, depth)
        raise NotImplementedError(f"type {kind}")

    def _object(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = {k: self.of(v, depth) for k, v in properties.items() if k in required}
        optional = {k: self.of(v, depth) for k, v in properties.items() if k not in required}
        low, high = schema.get("minProperties", 0), min(schema.get("maxProperties", 3), 3)
        declared = st.fixed_dictionaries(fixed, optional=optional)
        extra = schema.get("additionalProperties", True)
        if extra is False:
            return declared.filter(lambda d: len(d) >= low)
        keys = _string(schema.get("propertyNames", {})).filter(lambda k: k not in properties)
        values = self.of(extra, depth)

        @st.composite
        def draw(draw: Any) -> dict[str, Any]:
            doc: dict[str, Any] = draw(declared)
            more = max(low - len(doc), 0)
            size = max(high - len(doc), more)
            doc |= draw(st.dictionaries(keys, values, min_size=more, max_size=size))
            return doc

        return draw()


def _recurses(schema: Any) -> bool:
    return "$ref" in str(schema)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    return _string_of(json.dumps(schema, sort_keys=True))


@functools.cache
def _string_of(text: str) -> st.SearchStrategy[str]:
    schema = json.loads(text)
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        found = st.from_regex(ecma(schema["pattern"]))
        found = found.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))
    else:
        found = st.text(min_size=low, max_size=high)
    if "format" in schema:
        checker = Draft202012Validator.FORMAT_CHECKER
        found = found.filter(lambda s: checker.conforms(s, schema["format"]))
    return found


def _integer(schema: dict[str, Any]) -> st.SearchStrategy[int]:
    low, high = schema.get("minimum"), schema.get("maximum")
    low = None if low is None else math.ceil(low)
    high = None if high is None else math.floor(high)
    if "exclusiveMinimum" in schema:
        low = math.floor(schema["exclusiveMinimum"]) + 1
    if "exclusiveMaximum" in schema:
        high = math.ceil(schema["exclusiveMaximum"]) - 1
    return st.integers(low, high)


def _number(schema: dict[str, Any]) -> st.SearchStrategy[float | int]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    floats = st.floats(
        low,
        high,
        exclude_min="exclusiveMinimum" in schema,
        exclude_max="exclusiveMaximum" in schema,
        allow_nan=False,
        allow_infinity=False,
    )
    return floats | _integer(schema)
