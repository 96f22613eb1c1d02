"""The SQL database of the read models: engines and migrations (Alembic)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tenantplane.services.runtime.localstate import resolve_database_url
from tenantplane.services.runtime.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# Alembic keeps the running migration's context in process-wide state, so two
# services of one process (as `tenantctl dev up` runs them) must not migrate at
# the same time. (Migrating a database already at head is a cheap no-op.)
# One lock per event loop: an asyncio.Lock belongs to the loop that first waits on it.
_MIGRATING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def create_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine for `url` (SQLite or PostgreSQL), optionally inside a PG schema."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted content is overwritten, not left in free pages (destroyed keys must go).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def alembic_config() -> Config:
    """The Alembic configuration of tenantplane's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The settings' database as it is (what a reader uses), disposed of at exit."""
    engine = create_engine(resolve_database_url(settings))
    try:
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def migrated_database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The settings' database, migrated to head (what a service that owns tables uses),
    disposed of at exit."""
    async with database(settings) as engine:
        await migrate(engine)
        yield engine


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema to `revision`."""

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    lock = _MIGRATING.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, _migrating_alone(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Replicas starting together: the first migrates, the others wait for its
            # commit and then find the schema at head.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        await conn.run_sync(upgrade)


# The advisory lock every tenantplane process takes to migrate a PostgreSQL database.
_PG_LOCK = 0x7E4A_7A1E


@contextlib.asynccontextmanager
async def _migrating_alone(engine: AsyncEngine) -> AsyncIterator[None]:
    """For a SQLite file, hold an exclusive lock on a file beside it while migrating, so
    processes started together (`tenantctl serve` replicas) migrate one at a time."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrating", "a") as held:  # noqa: ASYNC230 - a lock file, opened once
        await asyncio.to_thread(fcntl.flock, held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
