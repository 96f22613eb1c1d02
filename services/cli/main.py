"""`tenantctl`: the admin CLI of tenantplane."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer
from typer import _click as click  # the click Typer builds on (it carries its own)
from typer.core import TyperCommand, TyperGroup

from tenantplane.services.cli.failures import report

# Each command group (a Typer app in a module of this package): where it lives and
# its one-line help. A group's module is imported only when it runs, so
# `tenantctl tenant ...` never loads the code of `dev up` or the exporters, and the
# root's `--help` lists them all from here without importing any
# (tests/unit/test_cli_help.py checks each line against the group's own help).
# `status` and `serve` are single commands (apps of one command, made one).
SINGLE = {"status", "serve", "redis"}
COMMANDS: dict[str, tuple[str, str, str]] = {
    "dev": ("dev", "app", "Run tenantplane locally."),
    "tenant": ("tenant", "app",
               "Tenant lifecycle: create, show, list, suspend, resume, plan, offboard."),
    "config": ("config_cmd", "app",
               "Tenant configuration: get, set, unset, revert, history, apply, rollout."),
    "route": ("route", "app",
              "Per-tenant version routing: register, pin, default, rollout, retire, rollback."),
    "job": ("job", "app", "Tenant jobs: submit, watch, show, list, cancel, retry."),
    "schedule": ("schedule", "app", "Cron schedules: add, list, pause, resume, rm."),
    "pool": ("pool", "pools", "Worker pools: load per pool and tenant; which pool a tenant uses."),
    "worker": ("pool", "workers", "Run worker processes."),
    "contracts": ("contracts_cmd", "app", "Inspect and export the wire contracts."),
    "dlq": ("dlq", "app",
            "Dead letters: events a reader could not apply; re-drive them, or discard a bad one."),
    "projection": ("projection", "app",
                   "Projections (read models): status, lag, dead letters, rebuilds."),
    "secrets": ("secrets_cmd", "app",
                "Secrets: master keys and their rotation, and who revealed what."),
    "auth": ("auth_cmd", "app",
             "Least privilege on NATS: each role's permissions and credentials."),
    "status": ("ops_cmd", "status_app", "Summarise the system: services and their readiness, "
               "projections, dead letters, pools."),
    "serve": ("ops_cmd", "serve_app", "Run services in the foreground until SIGTERM (one "
              "service per Deployment on Kubernetes)."),
    "redis": ("redis_cmd", "redis_app",
              "Run one Redis command against the system's Redis and print the reply."),
}  # fmt: skip


def load_command(name: str) -> click.Command:
    """The command `name` of the root, imported from its module."""
    _lean_imports()
    module, attribute, _ = COMMANDS[name]
    typer_app = getattr(importlib.import_module(f"tenantplane.services.cli.{module}"), attribute)
    make = typer.main.get_command if name in SINGLE else typer.main.get_group
    command: click.Command = make(typer_app)
    command.name = name
    return command


def _lean_imports() -> None:
    """Load two libraries without optional parts this program never uses (about a third
    of a read command's start, measured by bench/p10_cli.py).

    nats-py imports aiohttp (0.15 s) whenever it is installed (the Kubernetes
    client brings it), for ws:// and wss:// servers only; it is hidden unless such
    a URL is given. structlog imports rich (0.07 s) to render tracebacks, which
    tenantplane renders as plain text (`runtime/logging.py`).
    """
    given = " ".join([*sys.argv, os.environ.get("TENANTPLANE_NATS_URL", "")])
    if "ws://" not in given and "wss://" not in given:
        _load_without("aiohttp", "nats.aio.client")
    _load_without("rich", "structlog")


def _load_without(hidden: str, module: str) -> None:
    """Import `module` while `hidden` cannot be imported (so it skips its optional use
    of it); `hidden` is importable again afterwards."""
    if module in sys.modules or (hidden in sys.modules and hidden != "rich"):
        return
    saved = sys.modules.get(hidden)
    sys.modules[hidden] = None  # type: ignore[assignment]  # `import hidden` now fails
    try:
        importlib.import_module(module)
    finally:
        if saved is None:
            del sys.modules[hidden]
        else:
            sys.modules[hidden] = saved


class _LazyGroup(TyperGroup):
    """The root command: subcommands are loaded from their modules on first use."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # the root's help needs a name and a line, not the command
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][2])
        return load_command(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


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
    # Imported here, as every group is: `--help` needs neither settings nor logging.
    from tenantplane.services.runtime.logging import quiet_library_loggers
    from tenantplane.services.runtime.settings import Settings

    quiet_library_loggers()
    ctx.obj = Settings(nats_url=nats_url, redis_url=redis_url, data_dir=data_dir)


def main() -> None:
    """Console-script entry point: every failure is one line and an exit code (failures.py)."""
    try:
        app()
    except Exception as e:
        code = report(e)
        if code is None:
            raise
        sys.exit(code)
