"""`tenantctl dev`: the whole system on one machine, in the foreground."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from tenantplane.contracts import EVENTS
from tenantplane.services.cli.context import run, settings_from
from tenantplane.services.cli.output import out
from tenantplane.services.config.secrets import new_master_key
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.app import ensure_streams
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.localstate import LocalSystem, resolve_database_url
from tenantplane.services.runtime.logging import configure
from tenantplane.services.runtime.services import serve_process
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.service_list import SERVICES

app = typer.Typer(help="Run tenantplane locally.", no_args_is_help=True)


@app.command()
def up(
    ctx: typer.Context,
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Where NATS and Redis keep data [default: ./.tenantplane]"
    ),
    cluster: int = typer.Option(
        1, "--cluster", min=1, max=5,
        help="Run NATS as a cluster of this many nodes on loopback (streams replicated on 3)",
    ),
) -> None:  # fmt: skip
    """Start NATS, Redis and every service in the foreground; Ctrl-C stops them all.

    NATS and Redis are started from the embedded binaries unless --nats-url /
    --redis-url (or TENANTPLANE_NATS_URL / TENANTPLANE_REDIS_URL) point at
    running servers. Data survives a restart. Other tenantctl commands find
    this system through the state file in the data dir.

    Example:  tenantctl dev up --data-dir /tmp/tp --cluster 3
    """
    settings = settings_from(ctx)
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if cluster > 1:
        settings = settings.model_copy(update={"replicas": min(cluster, 3)})
    configure(settings.log_level, settings.log_format)
    with _servers(settings, cluster) as started:
        try:
            run(_serve(started))
        finally:
            LocalSystem.clear(started.data_dir)
    out.print("tenantplane stopped")


@contextlib.contextmanager
def _servers(settings: Settings, cluster: int) -> Iterator[Settings]:
    data = settings.data_dir
    with contextlib.ExitStack() as stack:
        update: dict[str, object] = {}
        if not settings.nats_url:
            nats = (
                embedded.nats_cluster(data / "nats", cluster).start()
                if cluster > 1
                else embedded.nats_server(data / "nats").start()
            )
            stack.callback(nats.stop)
            update["nats_url"] = nats.url
        if not settings.redis_url:
            redis = embedded.redis_server(data / "redis", persist=True).start()
            stack.callback(redis.stop)
            update["redis_url"] = redis.url
        if not settings.master_keys():
            update["secrets_master_key_file"] = _local_master_key(data)
        yield settings.model_copy(update=update)


def _local_master_key(data: Path) -> Path:
    """The local system's master key for secrets, made on first start (mode 0600)."""
    path = data / "master.key"
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(new_master_key() + "\n")
        out.print(f"made a secrets master key in {path}; production sets its own")
    return path


async def _serve(settings: Settings) -> None:
    nc = await connect_nats(settings, "tenantctl-dev")
    try:
        await ensure_streams(EventLog(nc.jetstream(), settings.subjects, EVENTS), settings)
    finally:
        await nc.close()

    def listening(ops_url: str) -> None:
        database_url = resolve_database_url(settings)
        LocalSystem(
            settings.nats_url, settings.redis_url, database_url, os.getpid(), ops_url
        ).write(settings.data_dir)
        out.print(f"tenantplane is up: NATS {settings.nats_url}, Redis {settings.redis_url}")
        out.print(f"health and metrics: {ops_url}/readyz, {ops_url}/metrics")
        out.print(f"data in {settings.data_dir.resolve()}/ - Ctrl-C stops everything")

    await serve_process(settings, SERVICES, listening)
