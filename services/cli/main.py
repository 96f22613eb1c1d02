"""`tenantctl`: the admin CLI of tenantplane."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer
from typer import _click as click  # the click Typer builds on (it carries its own)
from typer.core import TyperGroup

from tenantplane.services.cli.failures import report
from tenantplane.services.runtime.logging import quiet_library_loggers
from tenantplane.services.runtime.settings import Settings

# Each command group (a Typer app in a module of this package) and where it lives.
# A group's module is imported only when it runs (or the whole help is printed),
# so `tenantctl tenant ...` never loads the code of `dev up` or the exporters.
# `status` and `serve` are single commands (apps of one command, made one).
SINGLE = {"status", "serve"}
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("dev", "app"),
    "tenant": ("tenant", "app"),
    "config": ("config_cmd", "app"),
    "route": ("route", "app"),
    "job": ("job", "app"),
    "schedule": ("schedule", "app"),
    "pool": ("pool", "pools"),
    "worker": ("pool", "workers"),
    "contracts": ("contracts_cmd", "app"),
    "dlq": ("dlq", "app"),
    "projection": ("projection", "app"),
    "secrets": ("secrets_cmd", "app"),
    "auth": ("auth_cmd", "app"),
    "status": ("ops_cmd", "status_app"),
    "serve": ("ops_cmd", "serve_app"),
}


class _LazyGroup(TyperGroup):
    """The root command: subcommands are loaded from their modules on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = COMMANDS.get(cmd_name)
        if found is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = found
        typer_app = getattr(
            importlib.import_module(f"tenantplane.services.cli.{module}"), attribute
        )
        make = typer.main.get_command if cmd_name in SINGLE else typer.main.get_group
        command: click.Command = make(typer_app)
        command.name = cmd_name
        return command


app = typer.Typer(
    name="tenantctl",
    cls=_LazyGroup,
    help="Operate tenantplane: tenants, config, routing, jobs, projections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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
