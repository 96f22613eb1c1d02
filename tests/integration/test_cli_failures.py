"""How tenantctl fails: servers down or behind a wrong URL exit 3, refusals exit 1; one line
each (or the listed problems), never a traceback."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import inspect

from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.database import create_engine
from tenantplane.services.runtime.settings import Settings
from tests.support.cli import tenantctl

pytestmark = pytest.mark.integration

# A short request timeout: a refused NATS is retried until it, then reported.
FAST = {"TENANTPLANE_REQUEST_TIMEOUT_S": "2"}
EXIT_UNAVAILABLE = 3


@dataclass(frozen=True)
class Stopped:
    """URLs where a nats-server and a redis-server ran, and have been stopped."""

    nats_url: str
    redis_url: str


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Stopped:
    workdir = tmp_path_factory.mktemp("stopped")
    nats = embedded.nats_server(workdir / "nats").start()
    redis = embedded.redis_server(workdir / "redis", persist=False).start()
    nats.stop()
    redis.stop()
    return Stopped(nats.url, redis.url)


def assert_unavailable(result: subprocess.CompletedProcess[str], names: str) -> None:
    """Exit 3 and one stderr line that says it is unavailable and how to point at it."""
    shown = result.stdout + result.stderr
    assert result.returncode == EXIT_UNAVAILABLE, shown
    assert "Traceback" not in shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: unavailable: "), lines[0]
    assert names in lines[0], lines[0]


NEEDS_NATS = {
    "config-get": ["config", "get", "acme"],
    "config-set": ["config", "set", "acme", "rate_limit=5"],
    "tenant-list": ["tenant", "list"],
    "job-show": ["job", "show", "acme", "j1"],
    "status": ["status"],
    "dlq-list": ["dlq", "list"],
    "route-resolve": ["route", "resolve", "billing", "acme"],
}
NEEDS_REDIS = {
    "config-get": ["config", "get", "acme"],
    "tenant-list": ["tenant", "list"],
    "status": ["status"],
    "route-resolve": ["route", "resolve", "billing", "acme"],
}


@pytest.mark.parametrize("args", NEEDS_NATS.values(), ids=NEEDS_NATS.keys())
async def test_with_nats_stopped_a_command_exits_3_naming_nats(
    settings: Settings, stopped: Stopped, args: list[str]
) -> None:
    # Given a NATS that is not running
    at_stopped = settings.model_copy(update={"nats_url": stopped.nats_url})
    # When a command runs
    result = await asyncio.to_thread(tenantctl, at_stopped, *args, env=FAST)
    # Then it exits 3 with one line naming NATS and how to point at it
    assert_unavailable(result, "--nats-url")
    assert "NATS" in result.stderr


@pytest.mark.parametrize("args", NEEDS_REDIS.values(), ids=NEEDS_REDIS.keys())
async def test_with_redis_stopped_a_command_exits_3_naming_redis(
    settings: Settings, stopped: Stopped, args: list[str]
) -> None:
    at_stopped = settings.model_copy(update={"redis_url": stopped.redis_url})
    result = await asyncio.to_thread(tenantctl, at_stopped, *args, env=FAST)
    assert_unavailable(result, "--redis-url")


async def test_a_wrong_redis_url_flag_exits_3_with_one_line(settings: Settings) -> None:
    # Given NATS running, and --redis-url pointing where no Redis listens
    wrong = f"redis://127.0.0.1:{embedded.free_port()}"
    # When config is read
    result = await asyncio.to_thread(
        tenantctl, settings, "--redis-url", wrong, "config", "get", "acme"
    )
    # Then one line, exit 3 (it used to be two tracebacks and exit 1)
    assert_unavailable(result, "--redis-url")


async def test_with_the_database_unreachable_job_list_exits_3_naming_it(
    settings: Settings,
) -> None:
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{embedded.free_port()}/test"
    result = await asyncio.to_thread(
        tenantctl, settings, "job", "list", env={"TENANTPLANE_DATABASE_URL": nowhere}
    )
    assert_unavailable(result, "TENANTPLANE_DATABASE_URL")


async def test_with_no_system_and_no_url_a_command_says_how_to_start_or_point_at_one(
    settings: Settings,
) -> None:
    # Given no URL at all and no local system in the data directory
    nothing = {"TENANTPLANE_NATS_URL": "", "TENANTPLANE_REDIS_URL": ""}
    result = await asyncio.to_thread(
        tenantctl, settings, "--data-dir", str(settings.data_dir), "tenant", "list", env=nothing
    )
    assert_unavailable(result, "--nats-url")
    assert "tenantctl dev up" in result.stderr
    assert "TENANTPLANE_DATA_DIR" in result.stderr


async def test_applying_a_missing_directory_is_refused_without_a_traceback(
    settings: Settings, tmp_path: Path
) -> None:
    # Given a directory that does not exist (checked before anything connects)
    missing = tmp_path / "no-such-dir"
    # When it is applied
    result = await asyncio.to_thread(tenantctl, settings, "config", "apply", str(missing))
    # Then it is an invalid request naming the directory (a usage error), no traceback
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "error: invalid_request: 1 problem(s), nothing applied:",
        f"  {missing}: not a directory",
    ]


async def test_job_list_reads_the_history_as_it_is_and_never_migrates(
    settings: Settings, tmp_path: Path
) -> None:
    # Given a database the scheduler never started on
    empty = tmp_path / "empty.db"
    env = {"TENANTPLANE_DATABASE_URL": f"sqlite+aiosqlite:///{empty}"}
    # When the history is asked for
    result = await asyncio.to_thread(tenantctl, settings, "job", "list", env=env)
    # Then it says so (unavailable, one line), and made no table of its own
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "no job history in this database yet" in result.stderr
    engine = create_engine(f"sqlite+aiosqlite:///{empty}")
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    assert tables == []
