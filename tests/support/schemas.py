"""A JSON Schema validator that reads patterns as JSON Schema says, and the walk of a schema.

JSON Schema patterns are ECMA-262 regular expressions, in which `$` (without the
multiline flag) is the end of the string. The `jsonschema` package searches them
with Python's `re`, whose `$` also matches before a final newline, so it would
take `"acme\\n"` for a tenant id that every other validator (and the service)
refuses. `Validator` matches `$` as ECMA-262 does; everything else is
`Draft202012Validator` as shipped, with format checking.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators


@functools.cache
def ecma(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled with `$` meaning the end of the string (outside classes)."""
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "]":
            in_class = False
            out.append(char)
        else:
            out.append(r"\Z" if char == "$" and not in_class else char)
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# (The stubs leave `extend` untyped.)
Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def is_valid(schema: dict[str, Any], instance: Any) -> bool:
    """Whether `instance` is valid against `schema`, formats checked."""
    # One validator per schema object (kept alive with it, so its id is not reused).
    _, validator = _VALIDATORS.setdefault(
        id(schema), (schema, Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER))
    )
    return bool(validator.is_valid(instance))


def subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema object inside `schema`, itself included."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from subschemas(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from subschemas(item)


def unrolled(schema: dict[str, Any], depth: int = 2) -> dict[str, Any]:
    """`schema` with its recursive JSON-value definition inlined `depth` levels deep.

    hypothesis-jsonschema cannot follow a recursive `$ref`; what it generates from
    this is a part of what `schema` allows (JSON values nested at most `depth` deep).
    """
    defs = schema.get("$defs", {})
    if "JsonData" not in defs:
        return schema
    ref = {"$ref": "#/$defs/JsonData"}
    scalars = {"anyOf": [s for s in defs["JsonData"]["anyOf"] if ref not in s.values()]}
    inlined: Any = scalars
    for _ in range(depth):
        inlined = _replaced(defs["JsonData"], ref, inlined)
    rest = {k: v for k, v in defs.items() if k != "JsonData"}
    result: dict[str, Any] = _replaced({**schema, "$defs": rest}, ref, inlined)
    return result


def _replaced(node: Any, old: dict[str, Any], new: Any) -> Any:
    if node == old:
        return new
    if isinstance(node, dict):
        return {k: _replaced(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_replaced(v, old, new) for v in node]
    return node
