"""Migrations run by several processes at once: replicas of a service starting together."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from tenantplane.services.runtime.database import create_engine
from tests import servers as test_servers

pytestmark = pytest.mark.integration

MIGRATE = """
import asyncio, sys
from tenantplane.services.runtime.database import create_engine, migrate

async def main():
    engine = create_engine(sys.argv[1], schema=sys.argv[2] or None)
    await migrate(engine)
    await engine.dispose()

asyncio.run(main())
"""


def migrate_at_once(url: str, schema: str = "", processes: int = 4) -> list[str]:
    """Start `processes` processes migrating the same database together; their errors."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url, schema], stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    said = [(p.communicate(timeout=120)[1], p.returncode) for p in started]
    return [err for err, code in said if code != 0]


async def test_processes_migrating_one_sqlite_file_together_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert await asyncio.to_thread(migrate_at_once, url) == []
    engine = create_engine(url)
    async with engine.connect() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    await engine.dispose()
    assert len(head) == 1


async def test_processes_migrating_one_postgres_schema_together_all_succeed(
    servers: test_servers.Servers, namespace: str
) -> None:
    admin = create_engine(servers.postgres_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{namespace}"'))
    try:
        errors = await asyncio.to_thread(migrate_at_once, servers.postgres_url, namespace)
        assert errors == []
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{namespace}" CASCADE'))
        await admin.dispose()
