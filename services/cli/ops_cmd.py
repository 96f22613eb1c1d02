"""`tenantctl serve` runs services; `tenantctl status` shows the whole system."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from tenantplane.services.cli import pool, projection
from tenantplane.services.cli.context import connected, run, settings_from
from tenantplane.services.cli.options import Output
from tenantplane.services.cli.output import Format, emit, out
from tenantplane.services.runtime.errors import Unavailable
from tenantplane.services.runtime.logging import configure
from tenantplane.services.runtime.ops import gather_status
from tenantplane.services.runtime.services import serve_process
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.service_list import SERVICES

SERVABLE = [name for name, _ in SERVICES]
# Services without which the control plane does not work.
REQUIRED = {"config", "router", "scheduler"}
# Services whose command handlers and projectors can run in separate processes.
SPLITTABLE = ("config", "router", "scheduler")


def serve(
    ctx: typer.Context,
    names: list[str] = typer.Argument(..., help=f"Services to run: {', '.join(SERVABLE)}"),
    only: str = typer.Option(
        "all",
        "--only",
        help="Run one part of config, router or scheduler: `commands` (handlers and "
        "loops: the scheduler's scheduling) or `projections` (read models: the scheduler's "
        "job history); run the other part in another process [env: TENANTPLANE_SERVE_ONLY]",
    ),
) -> None:
    """Run services in the foreground until SIGTERM (one service per Deployment on Kubernetes).

    The process serves /healthz, /readyz and /metrics on TENANTPLANE_OPS_HOST:
    TENANTPLANE_OPS_PORT (127.0.0.1:8470 by default; bind 0.0.0.0 in a pod).
    `worker` runs the default pool with the example job kinds; real pools run
    `tenantctl worker run --pool NAME --kinds module:KINDS`. Under load, the config
    service's commands and projection each use most of a core: `--only` runs them
    in two processes (two Deployments), as docs/operations.md shows.

    Example:  TENANTPLANE_NATS_URL=nats://nats:4222 tenantctl serve config
    Example:  tenantctl serve config --only commands    # and, in another process:
              tenantctl serve config --only projections
    """
    unknown = sorted(set(names) - set(SERVABLE))
    if unknown:
        raise typer.BadParameter(f"unknown service {', '.join(unknown)}; known: {SERVABLE}")
    settings = settings_from(ctx)
    if only != "all" or settings.serve_only != "all":
        settings = _one_part(settings, names, only)
    configure(settings.log_level, settings.log_format)
    chosen = [(name, service) for name, service in SERVICES if name in names]
    run(serve_process(settings, chosen))


def _one_part(settings: Settings, names: list[str], only: str) -> Settings:
    """The settings of a process running one part (`--only`, else the environment's)."""
    part = settings.serve_only if only == "all" else only
    if part not in ("commands", "projections"):
        raise typer.BadParameter(f"--only takes commands or projections, not {part!r}")
    others = sorted(set(names) - set(SPLITTABLE))
    if others:
        raise typer.BadParameter(
            f"--only splits {', '.join(SPLITTABLE)} only; {', '.join(others)} run whole"
        )
    return settings.model_copy(update={"serve_only": part})


def status(ctx: typer.Context, output: Format = Output) -> None:
    """Summarise the system: services and their readiness, projections, dead letters, pools.

    Every running service answers on NATS, wherever it runs; a service missing
    from the list is not running (or cannot reach NATS). Exits 1 when a service
    is not ready or events are parked, so it can gate scripts.

    Example:  tenantctl status -o json
    """
    report = run(_status(settings_from(ctx)))
    if output is Format.JSON:
        emit(report, output)
    else:
        emit(report["services"], output, "services")
        emit(report["projections"], output, "projections")
        emit(report["pools"], output, "pools")
        if report["missing"]:
            out.print(Text.assemble(("not running:", "red"), " ", ", ".join(report["missing"])))
        out.print(f"healthy: {report['healthy']}")
    if not report["healthy"]:
        raise typer.Exit(1)


async def _status(settings: Settings) -> dict[str, Any]:
    async with connected(settings) as (nc, _):
        services = await gather_status(nc, settings.subjects)
    rows = [
        {
            "service": s["service"],
            "instance": s["instance"],
            "ready": s["ready"],
            "uptime_s": s["uptime_s"],
            "problems": "; ".join(f"{k}: {v}" for k, v in s["problems"].items()),
        }
        for s in services
    ]
    projections = await projection.projection_status(settings)
    try:
        pools = [
            {k: v for k, v in p.items() if k != "waiting_by_tenant"}
            for p in await pool.pool_status(settings)
        ]
    except Unavailable:
        pools = []
    missing = sorted(REQUIRED - {s["service"] for s in services})
    healthy = (
        all(s["ready"] for s in services)
        and not missing
        and not any(p["parked"] or p["lag"] > settings.ready_max_lag for p in projections)
    )
    return {
        "healthy": healthy,
        "missing": missing,
        "services": rows,
        "projections": projections,
        "pools": pools,
    }


# One command each, for the root CLI to load on demand (main.py).
status_app = typer.Typer()
status_app.command("status")(status)
serve_app = typer.Typer()
serve_app.command("serve")(serve)
