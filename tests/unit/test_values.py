"""JSON values: the bytes a read model keeps of them."""

from __future__ import annotations

import tracemalloc
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tenantplane.contracts.values import INT_MAX, INT_MIN, json_bytes

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(json_values)
def test_json_bytes_are_orjsons_bytes(value: Any) -> None:
    # Then every value, integers and booleans included, is written as orjson writes it
    assert json_bytes(value) == orjson.dumps(value)


def test_kept_json_bytes_take_the_memory_of_their_size() -> None:
    # Given a replay batch's worth of small values, kept until its commit
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [json_bytes(v) for v in [*range(1_000), *map(str, range(1_000))]]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Then they hold about their own size, not a working buffer each (4 KiB in orjson 3.12+)
    assert len(kept) == 2_000
    assert held < 2_000 * 200
