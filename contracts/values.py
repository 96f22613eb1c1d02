"""JSON values inside events and commands (config values, job args and results).

Any JSON value, with numbers as the log carries them exactly: finite, and
within the 64-bit integers' range. Pydantic would take NaN or Infinity (from
Python, or as the non-standard `NaN` token in JSON) and write it back as
`null`, and take an integer of any size, which the log's encoder cannot write;
both are refused instead, so a value is stored exactly or not at all. The bound
holds for fractional numbers too because JSON cannot tell `1e19` from
`10000000000000000000`: one rule for every number is what a JSON Schema can
state, and the exported schema states it with number bounds.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Union

import orjson
from pydantic import AfterValidator, Field, GetJsonSchemaHandler, JsonValue, TypeAdapter
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

# The integers the log stores exactly (and pydantic reads into an `int` field): 64 bits.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# The same bounds as floats can state them (2^63 - 1 is no float; the next one below is).
_Bounded = Annotated[float, Field(ge=float(INT_MIN), le=math.nextafter(2.0**63, 0))]
# The shape of a JSON value, for the JSON Schema only: validating with it would be
# several times slower than pydantic's `JsonValue` and report one error per branch.
# (mypy reads a recursive alias only under its own name; the schema's is JsonData.)
_Shape = TypeAliasType(  # type: ignore[misc]
    "JsonData",
    Union[bool, int, _Bounded, str, list["_Shape"], dict[str, "_Shape"], None],  # type: ignore[misc]  # noqa: UP007
)
_SHAPE: TypeAdapter[Any] = TypeAdapter(_Shape)  # type: ignore[arg-type]


def _exact(value: JsonValue) -> JsonValue:
    """Refuse NaN, the infinities and numbers beyond 64 bits anywhere inside `value`."""
    kind = type(value)
    if kind is str or kind is bool or value is None:  # most values: nothing to look into
        return value
    if kind is int and INT_MIN <= value <= INT_MAX:  # type: ignore[operator]
        return value
    stack: list[JsonValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{item} is not a JSON number: numbers must be finite")
        if isinstance(item, int | float) and not INT_MIN <= item <= INT_MAX:
            raise ValueError(f"{item} is beyond 64 bits: numbers must lie in [-2^63, 2^63 - 1]")
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return value


class _ShapeSchema:
    """Gives `JsonData` the JSON Schema of `_Shape`."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return handler(_SHAPE.core_schema)


JsonData = Annotated[JsonValue, AfterValidator(_exact), _ShapeSchema()]


def json_bytes(value: Any) -> bytes:
    """`orjson.dumps(value)` in bytes of its own size, for JSON that is kept, not sent.

    orjson (3.12 on) hands back its whole working buffer, 4 KiB, as the result; a
    replay keeps every value of a batch until the batch's commit (200,000 of them
    in a batch of 20-key changes), and allocating and holding so many 4 KiB blocks
    cost 2 µs a value and gigabytes of memory, against 0.2 µs for a copy of the
    right size. An integer, the commonest value, is written directly (0.1 µs):
    its digits are what orjson writes.
    """
    if type(value) is int and INT_MIN <= value <= INT_MAX:
        return b"%d" % value
    return memoryview(orjson.dumps(value)).tobytes()
