"""`tenantctl`: the admin CLI of tenantplane."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tenantplane.services.cli import (
    auth_cmd,
    config_cmd,
    contracts_cmd,
    dev,
    dlq,
    job,
    ops_cmd,
    pool,
    projection,
    route,
    schedule,
    secrets_cmd,
    tenant,
)
from tenantplane.services.cli.failures import report
from tenantplane.services.runtime.logging import quiet_library_loggers
from tenantplane.services.runtime.settings import Settings

app = typer.Typer(
    name="tenantctl",
    help="Operate tenantplane: tenants, config, routing, jobs, projections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(dev.app, name="dev")
app.add_typer(tenant.app, name="tenant")
app.add_typer(config_cmd.app, name="config")
app.add_typer(route.app, name="route")
app.add_typer(job.app, name="job")
app.add_typer(schedule.app, name="schedule")
app.add_typer(pool.pools, name="pool")
app.add_typer(pool.workers, name="worker")
app.add_typer(contracts_cmd.app, name="contracts")
app.add_typer(dlq.app, name="dlq")
app.add_typer(projection.app, name="projection")
app.add_typer(secrets_cmd.app, name="secrets")
app.add_typer(auth_cmd.app, name="auth")
app.command("status")(ops_cmd.status)
app.command("serve")(ops_cmd.serve)


@app.callback()
def root(
    ctx: typer.Context,
    nats_url: str = typer.Option(
        "", "--nats-url", envvar="TENANTPLANE_NATS_URL", help="NATS server(s), comma-separated"
    ),
    redis_url: str = typer.Option("", "--redis-url", envvar="TENANTPLANE_REDIS_URL"),
    data_dir: Path = typer.Option(
        Path(".tenantplane"), "--data-dir", envvar="TENANTPLANE_DATA_DIR",
        help="Local system state (found here when no URL is given)",
    ),
) -> None:  # fmt: skip
    """Connection options shared by every command."""
    ctx.obj = Settings(nats_url=nats_url, redis_url=redis_url, data_dir=data_dir)


def main() -> None:
    """Console-script entry point: every failure is one line and an exit code (failures.py)."""
    quiet_library_loggers()
    try:
        app()
    except Exception as e:
        code = report(e)
        if code is None:
            raise
        sys.exit(code)
