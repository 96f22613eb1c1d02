"""What is particular to the SQL store: a batch's row writes, merged per row and run
one executemany per statement, leave the tables as the statements one by one would."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, delete, event, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantplane.services.runtime.stores.sql import Bound, SqlOp, _execute_all

pytestmark = pytest.mark.integration

# A script is a list of steps, each built into its operation for one set of tables:
# (what, row key, values).
Step = tuple[str, int, dict[str, int]]


def _tables(prefix: str) -> tuple[MetaData, dict[str, Table]]:
    metadata = MetaData()
    rows = Table(
        f"{prefix}_rows", metadata,
        Column("k", Integer, primary_key=True),
        Column("a", Integer), Column("b", Integer), Column("c", Integer),
    )  # fmt: skip
    log = Table(
        f"{prefix}_log", metadata,
        Column("seq", Integer, primary_key=True), Column("k", Integer), Column("v", Integer),
    )  # fmt: skip
    return metadata, {"rows": rows, "log": log}


def _script(rng: random.Random, length: int) -> Iterator[Step]:
    """Random writes: each row inserted once before it is updated, a log of rows named
    or not, and statements over many rows (which name none) in between."""
    present: set[int] = set()
    for seq in range(length):
        k, roll = rng.randrange(5), rng.random()
        values = {c: rng.randrange(10) for c in rng.sample("abc", rng.randint(1, 3))}
        if roll < 0.5:
            yield ("update" if k in present else "insert", k, values)
            present.add(k)
        elif roll < 0.75:
            yield ("log" if rng.random() < 0.7 else "log unnamed", k, {"seq": seq})
        elif roll < 0.9:
            yield ("update many", k, {"b": values.get("a", 0)})
        else:
            present.discard(k)
            yield ("delete", k, {})


def _build(step: Step, tables: dict[str, Table]) -> SqlOp:
    what, k, values = step
    insert_row, update_row, insert_log = _statements(tables)
    rows = tables["rows"]
    match what:
        case "insert":
            return Bound(insert_row, {"k": k, **values}, ("r", k))
        case "update":
            return Bound(update_row, {**values, "_k": k}, ("r", k))
        case "log" | "log unnamed":
            seq = values["seq"]
            row = ("l", seq) if what == "log" else None
            return Bound(insert_log, {"seq": seq, "k": k, "v": seq * 7}, row)
        case "update many":
            return update(rows).where(rows.c.a > 4).values(b=values["b"])
    return delete(rows).where(rows.c.k == k)


_BUILT: dict[Table, tuple[Any, Any, Any]] = {}


def _statements(tables: dict[str, Table]) -> tuple[Any, Any, Any]:
    """A table set's row INSERT, row UPDATE and log INSERT, each built once (as a
    projection builds its own)."""
    rows, log = tables["rows"], tables["log"]
    if rows not in _BUILT:
        _BUILT[rows] = (
            insert(rows), update(rows).where(rows.c.k == bindparam("_k")), insert(log)
        )  # fmt: skip
    return _BUILT[rows]


def _one_by_one(conn: Connection, ops: list[SqlOp]) -> None:
    for op in ops:
        if isinstance(op, Bound):
            conn.execute(op.statement, [dict(op.params)])
        else:
            conn.execute(op)


def _contents(conn: Connection, tables: dict[str, Table]) -> list[list[tuple[Any, ...]]]:
    return [
        [tuple(row) for row in conn.execute(table.select().order_by(*table.primary_key))]
        for table in tables.values()
    ]


async def test_merged_row_writes_leave_the_tables_as_the_statements_one_by_one(
    sql_engine: AsyncEngine,
) -> None:
    (plain_meta, plain), (merged_meta, merged) = _tables("plain"), _tables("merged")

    def check(conn: Connection) -> int:
        rng, statements = random.Random(20261125), 0
        for _ in range(150):
            script = list(_script(rng, rng.randint(1, 25)))
            for metadata in (plain_meta, merged_meta):
                metadata.drop_all(conn)
                metadata.create_all(conn)
            _one_by_one(conn, [_build(step, plain) for step in script])
            _execute_all(conn, [_build(step, merged) for step in script])
            assert _contents(conn, plain) == _contents(conn, merged), script
            statements += len(script)
        return statements

    async with sql_engine.begin() as conn:
        assert await conn.run_sync(check) > 1_000


async def test_a_batch_of_row_writes_is_one_statement_per_shape(sql_engine: AsyncEngine) -> None:
    metadata, tables = _tables("shaped")
    rows, (insert_row, update_row, insert_log) = tables["rows"], _statements(tables)
    ops: list[SqlOp] = []
    for k in range(50):  # each row inserted, updated twice, and logged: 200 writes
        ops.append(Bound(insert_row, {"k": k, "a": 1, "b": None, "c": None}, ("r", k)))
        ops.append(Bound(update_row, {"b": 2, "_k": k}, ("r", k)))
        ops.append(Bound(insert_log, {"seq": k, "k": k, "v": 0}, ("l", k)))
        ops.append(Bound(update_row, {"c": 3, "_k": k}, ("r", k)))
    executed: list[str] = []

    def count(conn: Connection) -> list[tuple[Any, ...]]:
        metadata.create_all(conn)
        listener = lambda *args: executed.append(str(args[1]))  # noqa: E731
        event.listen(conn, "before_execute", listener)
        _execute_all(conn, ops)
        event.remove(conn, "before_execute", listener)
        return [tuple(row) for row in conn.execute(rows.select().order_by(rows.c.k))]

    async with sql_engine.begin() as conn:
        found = await conn.run_sync(count)
    assert found == [(k, 1, 2, 3) for k in range(50)]
    assert len(executed) == 2, executed  # every row's one INSERT, and the log's
