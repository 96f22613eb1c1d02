"""The SQL read-model store: a batch's statements and the checkpoint in one transaction.

A projection's operations are statements, or `Bound` statements: one statement
built once (so SQLAlchemy compiles it once) with the parameters of one row.
Consecutive `Bound`s of the same statement and columns run as one executemany.

A `Bound` that names its `row` (an INSERT of that row, or an UPDATE of it alone)
says it commutes with the writes of every other row: between two operations
that name no row, a batch's row writes are merged per row (its UPDATEs into its
INSERT, or into one UPDATE) and then run as one executemany per statement and
columns. A job's four events in one batch are then one INSERT among many, not
four statements in turn. Rows of other statements are written in any order, so
a projection names rows only where no constraint links them (a foreign key).

The checkpoint moves by compare-and-set (`UPDATE ... WHERE checkpoint = :expected`),
which works the same on SQLite and PostgreSQL: a racing committer either waits
for the row lock and then matches no row, or fails the write; in both cases
nothing of its batch is kept.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Executable,
    Insert,
    MetaData,
    String,
    Table,
    Update,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenantplane.services.runtime.errors import InvalidRequest, StoreUnavailable
from tenantplane.services.runtime.stores.base import CommitResult, Position

metadata = MetaData()


@dataclass(frozen=True)
class Bound:
    """A statement built once, with one row's parameters; `row`, when it writes that one
    row only (see the module's docstring), names it: any key unique to the row among
    the projection's tables, e.g. `("job", tenant, job_id)`."""

    statement: Executable
    params: Mapping[str, Any]
    row: Hashable | None = None


SqlOp = Executable | Bound

positions = Table(
    "tp_projection_positions",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("checkpoint", BigInteger, nullable=False),
    Column("parked", BigInteger, nullable=False),
)

blocked_subjects = Table(
    "tp_projection_blocked",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("subject", String(512), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)


class SqlStore:
    """A projection's read model and checkpoint in a SQL database."""

    kind = "sql"

    def __init__(
        self,
        engine: AsyncEngine,
        projection: str,
        owns: Sequence[Table] = (),
        tenant_column: str | None = None,
    ) -> None:
        """`owns`: the tables this projection alone writes (emptied by a reset);
        `tenant_column`: the column of each naming the tenant (to rebuild one tenant)."""
        self.engine = engine
        self.projection = projection
        self._owns = tuple(owns)
        self._tenant_column = tenant_column

    @staticmethod
    async def create_tables(engine: AsyncEngine, tables: Sequence[Table] = ()) -> None:
        """Create where missing the tables every SQL store keeps (positions, blocked
        subjects) and `tables`: for a service without migrations of its own, at start."""
        for table in (*metadata.sorted_tables, *tables):
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(table.create, checkfirst=True)
            except SQLAlchemyError:
                # Another process made it between the check and the create (its replicas
                # start together); what is left is to see that it is there.
                async with engine.begin() as conn:
                    await conn.run_sync(table.create, checkfirst=True)

    async def load(self) -> Position:
        """The stored position; creates it at 0 for a new projection."""
        try:
            async with self.engine.begin() as conn:
                row = await self._position(conn)
                blocked = await conn.execute(
                    select(blocked_subjects.c.subject, blocked_subjects.c.seq).where(
                        blocked_subjects.c.projection == self.projection
                    )
                )
                return Position(row[0], {s: q for s, q in blocked.all()}, row[1])
        except SQLAlchemyError as e:
            raise StoreUnavailable(
                f"cannot read projection position: {e}", server="database"
            ) from e

    async def _position(self, conn: AsyncConnection) -> tuple[int, int]:
        where = positions.c.projection == self.projection
        query = select(positions.c.checkpoint, positions.c.parked).where(where)
        row = (await conn.execute(query)).first()
        if row is not None:
            return int(row[0]), int(row[1])
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(positions).values(projection=self.projection, checkpoint=0, parked=0)
                )
        except IntegrityError:
            pass
        return 0, 0

    async def commit(
        self,
        expected: int,
        new: int,
        ops: Sequence[SqlOp],
        *,
        block: Mapping[str, int] = {},
        unblock: Sequence[str] = (),
        parked: int = 0,
        events: Sequence[tuple[int, int]] = (),
    ) -> CommitResult:
        """Run `ops` and move the checkpoint, if it still is `expected`."""
        args = (expected, new, ops, block, unblock, parked)
        try:
            async with self.engine.begin() as conn:
                moved = await conn.run_sync(self._commit_in, *args)
        except OperationalError as e:
            raise StoreUnavailable(f"projection commit failed: {e}", server="database") from e
        if not moved:
            return CommitResult(False, await self._checkpoint())
        return CommitResult(True, new)

    def _commit_in(
        self,
        conn: Connection,
        expected: int,
        new: int,
        ops: Sequence[SqlOp],
        block: Mapping[str, int],
        unblock: Sequence[str],
        parked: int,
    ) -> bool:
        """A commit's statements, in `conn`'s transaction; False, with nothing written,
        when the checkpoint is not `expected`."""
        moved = conn.execute(
            update(positions)
            .where(positions.c.projection == self.projection)
            .where(positions.c.checkpoint == expected)
            .values(checkpoint=new, parked=positions.c.parked + parked)
        )
        if moved.rowcount != 1:
            return False
        mine = blocked_subjects.c.projection == self.projection
        if unblock:
            conn.execute(
                delete(blocked_subjects).where(mine, blocked_subjects.c.subject.in_(unblock))
            )
        if block:
            rows = [
                {"projection": self.projection, "subject": s, "seq": q} for s, q in block.items()
            ]
            conn.execute(insert(blocked_subjects), rows)
        _execute_all(conn, ops)
        return True

    async def _checkpoint(self) -> int:
        async with self.engine.connect() as conn:
            return (await self._position(conn))[0]

    async def clearing(self, tenant: str | None = None) -> list[Executable]:
        """`DELETE`s of one tenant's rows of the projection's tables (all rows for None)."""
        if tenant is None:
            return [delete(table) for table in self._owns]
        column = self._tenant_column
        if column is None:
            raise InvalidRequest(f"{self.projection} does not say which column names the tenant")
        return [delete(table).where(table.c[column] == tenant) for table in self._owns]

    async def reset(self) -> None:
        """Empty this projection's tables and forget its position."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(positions).where(positions.c.projection == self.projection))
            await conn.execute(
                delete(blocked_subjects).where(blocked_subjects.c.projection == self.projection)
            )
            for table in self._owns:
                await conn.execute(delete(table))


def _execute_all(conn: Connection, ops: Sequence[SqlOp]) -> None:
    """Run `ops` as their order requires: a run of `Bound`s of one statement and the same
    columns is one executemany, and the row writes between two other operations are
    merged per row and then grouped the same way."""
    run: list[Bound] = []
    rows: dict[Hashable, Bound] = {}
    for op in ops:
        if isinstance(op, Bound) and op.row is not None:
            if run:
                _execute_run(conn, run)
                run = []
            held = rows.get(op.row)
            merged = op if held is None else _merged(held, op)
            if merged is None:  # not one write of the row: what came before goes first
                _write_rows(conn, rows)
                rows, merged = {}, op
            rows[op.row] = merged
            continue
        if rows:
            _write_rows(conn, rows)
            rows = {}
        if run and not (
            isinstance(op, Bound)
            and op.statement is run[0].statement
            and op.params.keys() == run[0].params.keys()
        ):
            _execute_run(conn, run)
            run = []
        if isinstance(op, Bound):
            run.append(op)
        else:
            conn.execute(op)
    if run:
        _execute_run(conn, run)
    _write_rows(conn, rows)


def _merged(held: Bound, later: Bound) -> Bound | None:
    """One write of a row that does what `held` and then `later` do to it: an UPDATE
    folded into the row's INSERT or into its earlier UPDATE. None when there is none
    (two INSERTs of the row, an UPDATE of another shape, another table)."""
    first, then = held.statement, later.statement
    if not isinstance(then, Update):
        return None
    if isinstance(first, Insert) and first.table is then.table:
        # The UPDATE's values are its table's columns; its other parameters are its WHERE's.
        columns = then.table.c
        values = {name: value for name, value in later.params.items() if name in columns}
        return Bound(first, {**held.params, **values}, held.row)
    if first is then:
        return Bound(first, {**held.params, **later.params}, held.row)
    return None


def _write_rows(conn: Connection, rows: Mapping[Hashable, Bound]) -> None:
    """Each row's write, one executemany per statement and columns."""
    groups: dict[tuple[int, frozenset[str]], list[Bound]] = {}
    for op in rows.values():
        groups.setdefault((id(op.statement), frozenset(op.params)), []).append(op)
    for run in groups.values():
        _execute_run(conn, run)


def _execute_run(conn: Connection, run: list[Bound]) -> None:
    conn.execute(run[0].statement, [dict(op.params) for op in run])
