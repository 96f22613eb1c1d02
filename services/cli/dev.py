"""`tenantctl dev`: the whole system on one machine, in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from tenantplane.contracts import EVENTS
from tenantplane.services.cli.context import run, settings_from
from tenantplane.services.cli.output import out
from tenantplane.services.config.secrets import new_master_key
from tenantplane.services.pools.service import run_local
from tenantplane.services.runtime import embedded
from tenantplane.services.runtime.app import ensure_streams
from tenantplane.services.runtime.connections import connect_nats
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.localstate import LocalSystem, resolve_database_url
from tenantplane.services.runtime.logging import configure
from tenantplane.services.runtime.services import Service, serve_process
from tenantplane.services.runtime.settings import CLUSTER_SCHEME, DEFAULT_DATA_DIR, Settings
from tenantplane.services.security.localauth import LocalAuth
from tenantplane.services.security.roles import DomainGrant
from tenantplane.services.service_list import SERVICES, role_of

app = typer.Typer(help="Run tenantplane locally.", no_args_is_help=True)
# Where dev up records the ports it listened on, to take them again.
PORTS_FILE = "ports.json"


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
    domain: list[str] = typer.Option(
        [], "--domain",
        help="A service's domain DOMAIN[:PROJECTION,...] to make a NATS user for (repeatable)",
    ),
    open_nats: bool = typer.Option(
        False, "--open-nats", help="Start NATS without users: any client may do anything",
    ),
    redis_url: str = typer.Option(
        None, "--redis-url", metavar="URL",
        help="Keep the read models on this Redis instead of an embedded one; "
        "redis+cluster://HOST:PORT[,...] for a Redis Cluster (the job queue then gets an "
        "embedded Redis of its own)",
    ),
) -> None:  # fmt: skip
    """Start NATS, Redis and every service in the foreground; Ctrl-C stops them all.

    NATS and Redis are started from the embedded binaries unless --nats-url /
    --redis-url (or TENANTPLANE_NATS_URL / TENANTPLANE_REDIS_URL) point at
    running servers. Data survives a restart. Other tenantctl commands find
    this system through the state file in the data dir.

    The embedded NATS admits only the installation's users, each allowed what
    its role needs (`tenantctl auth nats-config` shows them): every service
    and worker pool connects as its own, and tenantctl and the SDK, finding
    this system through the data dir, as the operator. A service of your own
    connects as its domain's user: start with --domain billing:PROJECTION,...
    and set TENANTPLANE_NATS_USER=domain-billing (the password is read from
    the data dir's nats-credentials.json).

    Example:  tenantctl dev up --data-dir /tmp/tp --cluster 3
    Example:  tenantctl dev up --redis-url redis+cluster://127.0.0.1:7000
    """
    settings = settings_from(ctx)
    if redis_url:
        settings = settings.model_copy(update={"redis_url": redis_url})
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if cluster > 1:
        settings = settings.model_copy(update={"replicas": min(cluster, 3)})
    configure(settings.log_level, settings.log_format)
    auth = None
    if not open_nats and not settings.nats_url:
        grants = [DomainGrant.parse(d) for d in domain]
        pools = [*settings.pools, settings.default_pool]
        auth = LocalAuth(settings.data_dir, settings.subjects, pools, grants)
    with _servers(settings, cluster, auth) as started:
        try:
            run(_serve(started, auth))
        finally:
            LocalSystem.clear(started.data_dir)
    out.print("tenantplane stopped")


@contextlib.contextmanager
def _servers(settings: Settings, cluster: int, auth: LocalAuth | None) -> Iterator[Settings]:
    data = settings.data_dir
    # The ports of the last start, taken again when free: whatever was started beside
    # the system (a gateway, a worker) finds it where it was after a restart.
    ports_file = data / PORTS_FILE
    ports = json.loads(ports_file.read_text()) if ports_file.exists() else {}
    again = {name: p for name, p in ports.items() if embedded.port_free(p)}
    with contextlib.ExitStack() as stack:
        update: dict[str, object] = {}
        if not settings.nats_url:
            users = auth.write() if auth is not None else None
            nats = (
                embedded.nats_cluster(data / "nats", cluster, include=users).start()
                if cluster > 1
                else embedded.nats_server(
                    data / "nats", again.get("nats", 0), include=users
                ).start()
            )
            stack.callback(nats.stop)
            if auth is not None:
                auth.reload = nats.reload
            update["nats_url"] = nats.url
            if isinstance(nats, embedded.ServerProcess):
                ports["nats"] = nats.port
        if not settings.redis_url:
            redis = embedded.redis_server(data / "redis", again.get("redis", 0)).start()
            stack.callback(redis.stop)
            update["redis_url"] = redis.url
            ports["redis"] = redis.port
        elif settings.redis_url.startswith(CLUSTER_SCHEME) and not settings.jobs_redis_url:
            # The read models on a Redis Cluster; the job queue needs one primary.
            jobs = embedded.redis_server(data / "jobs-redis", again.get("jobs-redis", 0)).start()
            stack.callback(jobs.stop)
            update["jobs_redis_url"] = jobs.url
            ports["jobs-redis"] = jobs.port
        data.mkdir(parents=True, exist_ok=True)
        ports_file.write_text(json.dumps(ports))
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


async def _serve(settings: Settings, auth: LocalAuth | None) -> None:
    nc = await connect_nats(_as(auth, settings, "config"), "tenantctl-dev")
    try:
        await ensure_streams(EventLog(nc.jetstream(), settings.subjects, EVENTS), settings)
    finally:
        await nc.close()

    def listening(ops_url: str) -> None:
        database_url = resolve_database_url(settings)
        credentials = str(auth.credentials_path.resolve()) if auth is not None else ""
        LocalSystem(
            settings.nats_url, settings.redis_url, database_url, os.getpid(), ops_url, credentials,
            jobs_redis_url=settings.jobs_redis_url or "",
        ).write(settings.data_dir)  # fmt: skip
        out.print(f"tenantplane is up: NATS {settings.nats_url}, Redis {settings.redis_url}")
        if settings.jobs_redis_url:
            out.print(f"job queue on its own Redis: {settings.jobs_redis_url}")
        out.print(f"health and metrics: {ops_url}/readyz, {ops_url}/metrics")
        if auth is not None:
            out.print(f"NATS users and passwords in {auth.credentials_path.resolve()}")
        out.print(f"data in {settings.data_dir.resolve()}/ - Ctrl-C stops everything")
        if settings.data_dir.resolve() != DEFAULT_DATA_DIR.resolve():
            # Other commands look in ./.tenantplane unless told otherwise.
            found = settings.data_dir.resolve()
            out.print(
                f"other shells find it with: export TENANTPLANE_DATA_DIR={found}", soft_wrap=True
            )

    await serve_process(settings, _with_users(auth), listening)


def _as(auth: LocalAuth | None, settings: Settings, role: str) -> Settings:
    return settings if auth is None else auth.as_role(settings, role)


def _with_users(auth: LocalAuth | None) -> list[tuple[str, Service]]:
    """Every service, each connecting as its own NATS user; dedicated pools' workers too."""
    if auth is None:
        return SERVICES
    served: list[tuple[str, Service]] = []
    for name, service in SERVICES:

        async def as_user(settings: Settings, stop: asyncio.Event, run: Service = service,
                          name: str = name) -> None:  # fmt: skip
            await run(auth.as_role(settings, role_of(name, settings)), stop)

        served.append((name, as_user))

    async def pools(settings: Settings, stop: asyncio.Event) -> None:
        # The reconciler's dedicated pools: each pool's workers as that pool's user.
        reconciler = auth.as_role(settings, role_of("pools", settings))
        await run_local(reconciler, stop, lambda pool: auth.as_pool(settings, pool))

    served[[n for n, _ in SERVICES].index("pools")] = ("pools", pools)
    return served
