"""The state file through which commands find the local system of `tenantctl dev up`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tenantplane.services.runtime.errors import InvalidRequest, Unavailable
from tenantplane.services.runtime.settings import CLUSTER_SCHEME, Settings

STATE_FILE = "local.json"


@dataclass(frozen=True)
class LocalSystem:
    """Where the running local system listens."""

    nats_url: str
    redis_url: str
    database_url: str
    pid: int
    ops_url: str = ""
    # The NATS passwords of its users; empty when its NATS takes anyone.
    nats_credentials: str = ""
    # The job queue's own Redis, when the read models are on a Redis Cluster.
    jobs_redis_url: str = ""

    def write(self, data_dir: Path) -> None:
        """Record this system in `data_dir`."""
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @staticmethod
    def read(data_dir: Path) -> LocalSystem | None:
        """The local system recorded in `data_dir`, if its process is still alive."""
        try:
            state = LocalSystem(**json.loads((data_dir / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return state if _alive(state.pid) else None

    @staticmethod
    def clear(data_dir: Path) -> None:
        """Forget the local system of `data_dir`."""
        (data_dir / STATE_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NoSystemFound(Unavailable):
    """Neither a URL setting nor a running local system says where to connect."""


def _resolve(settings: Settings, explicit: str, field: str) -> str:
    if explicit:
        return explicit
    local = LocalSystem.read(settings.data_dir)
    if local is None:
        raise NoSystemFound(
            f"no {field} given and no local system running in {settings.data_dir}/: "
            f"start one with `tenantctl dev up`, or point at the one you started with "
            f"--data-dir or TENANTPLANE_DATA_DIR, "
            f"or give --{field.replace('_', '-')} or TENANTPLANE_{field.upper()}"
        )
    url: str = getattr(local, field)
    return url


def resolve_nats_url(settings: Settings) -> str:
    """The NATS URL from settings, or from the running local system."""
    return _resolve(settings, settings.nats_url, "nats_url")


def resolve_redis_url(settings: Settings) -> str:
    """The Redis URL from settings, or from the running local system."""
    return _resolve(settings, settings.redis_url, "redis_url")


def resolve_jobs_redis_url(settings: Settings) -> str:
    """The job queue's Redis URL: its own setting, else the read models' Redis (which must
    then be a single Redis, not a cluster: dramatiq's scripts need one)."""
    if settings.jobs_redis_url:
        return settings.jobs_redis_url
    local = None if settings.redis_url else LocalSystem.read(settings.data_dir)
    if local is not None and local.jobs_redis_url:
        return local.jobs_redis_url
    url = resolve_redis_url(settings)
    if url.startswith(CLUSTER_SCHEME):
        raise InvalidRequest(
            "the read models are on a Redis Cluster; the job queue needs one Redis primary: "
            "set TENANTPLANE_JOBS_REDIS_URL"
        )
    return url


def resolve_database_url(settings: Settings) -> str:
    """The SQL database URL from settings, the local system, or SQLite in `data_dir`."""
    if settings.database_url:
        return settings.database_url
    local = LocalSystem.read(settings.data_dir)
    if local is not None:
        return local.database_url
    return f"sqlite+aiosqlite:///{settings.data_dir.resolve() / 'tenantplane.db'}"
