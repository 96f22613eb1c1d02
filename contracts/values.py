"""JSON values inside events and commands (config values, job args and results).

Any JSON value, with numbers as JSON can carry them: finite. Pydantic would take
NaN or Infinity (from Python, or as the non-standard `NaN` token in JSON) and
write it back as `null`; here it is refused instead, so a value is stored
exactly or not at all. The exported schema says the same with number bounds,
which a non-finite number (JSON's `1e400`) breaks.
"""

from __future__ import annotations

import math
import sys
from typing import Annotated, Any, Union

from pydantic import AfterValidator, Field, GetJsonSchemaHandler, JsonValue, TypeAdapter
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

_DOUBLE_MAX = sys.float_info.max
_Finite = Annotated[float, Field(ge=-_DOUBLE_MAX, le=_DOUBLE_MAX)]
# The shape of a JSON value, for the JSON Schema only: validating with it would be
# several times slower than pydantic's `JsonValue` and report one error per branch.
# (mypy reads a recursive alias only under its own name; the schema's is JsonData.)
_Shape = TypeAliasType(  # type: ignore[misc]
    "JsonData",
    Union[bool, int, _Finite, str, list["_Shape"], dict[str, "_Shape"], None],  # type: ignore[misc]  # noqa: UP007
)
_SHAPE: TypeAdapter[Any] = TypeAdapter(_Shape)  # type: ignore[arg-type]


def _finite(value: JsonValue) -> JsonValue:
    """Refuse NaN and the infinities anywhere inside `value`."""
    stack: list[JsonValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{item} is not a JSON number: numbers must be finite")
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


JsonData = Annotated[JsonValue, AfterValidator(_finite), _ShapeSchema()]
