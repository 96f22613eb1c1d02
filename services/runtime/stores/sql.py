"""The SQL read-model store: a batch's statements and the checkpoint in one transaction.

A projection's operations are statements, or `Bound` statements: one statement
built once (so SQLAlchemy compiles it once) with the parameters of one row.
Consecutive `Bound`s of the same statement and columns run as one executemany.

The checkpoint moves by compare-and-set (`UPDATE ... WHERE checkpoint = :expected`),
which works the same on SQLite and PostgreSQL: a racing committer either waits
for the row lock and then matches no row, or fails the write; in both cases
nothing of its batch is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Executable,
    MetaData,
    String,
    Table,
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
    """A statement built once, with one row's parameters."""

    statement: Executable
    params: Mapping[str, Any]


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
        try:
            async with self.engine.begin() as conn:
                moved = await conn.execute(
                    update(positions)
                    .where(positions.c.projection == self.projection)
                    .where(positions.c.checkpoint == expected)
                    .values(checkpoint=new, parked=positions.c.parked + parked)
                )
                if moved.rowcount != 1:
                    await conn.rollback()
                    return CommitResult(False, await self._checkpoint())
                await self._block(conn, block, unblock)
                if ops:
                    # One hop to the driver for the whole batch, not one per statement
                    # (with aiosqlite each await is a thread hand-off).
                    await conn.run_sync(_execute_all, ops)
        except OperationalError as e:
            raise StoreUnavailable(f"projection commit failed: {e}", server="database") from e
        return CommitResult(True, new)

    async def _block(
        self, conn: AsyncConnection, block: Mapping[str, int], unblock: Sequence[str]
    ) -> None:
        mine = blocked_subjects.c.projection == self.projection
        if unblock:
            await conn.execute(
                delete(blocked_subjects).where(mine, blocked_subjects.c.subject.in_(unblock))
            )
        if block:
            rows = [
                {"projection": self.projection, "subject": s, "seq": q} for s, q in block.items()
            ]
            await conn.execute(insert(blocked_subjects), rows)

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
    """Run `ops` in order; a run of `Bound`s of one statement and the same columns is
    one executemany."""
    run: list[Bound] = []
    for op in ops:
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


def _execute_run(conn: Connection, run: list[Bound]) -> None:
    conn.execute(run[0].statement, [dict(op.params) for op in run])
