"""`tenantctl projection`: where each read model stands."""

from __future__ import annotations

from typing import Any

import typer
from rich.progress import Progress

from tenantplane.contracts import EVENTS
from tenantplane.services.cli.context import run, session, settings_from
from tenantplane.services.cli.output import Format, emit
from tenantplane.services.projections import PROJECTIONS, ProjectionInfo
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.rebuild import RedisRebuild
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import RedisStore

app = typer.Typer(help="Projections (read models): status, lag, dead letters.")


@app.command()
def status(
    ctx: typer.Context, output: Format = typer.Option(Format.TABLE, "--output", "-o")
) -> None:
    """Show each projection's checkpoint, lag, parked events and blocked subjects.

    Lag is the number of events the projection has still to apply.

    Example:  tenantctl projection status -o json
    """
    emit(run(projection_status(settings_from(ctx))), output, "projections")


async def projection_status(settings: Settings) -> list[dict[str, Any]]:
    """Checkpoint, lag, parked events and blocked subjects of each Redis projection."""
    rows = []
    async with session(settings) as s:
        log = EventLog(s.nc.jetstream(), settings.subjects, EVENTS)
        for info in PROJECTIONS.values():
            position = await RedisStore(s.redis, settings.keys, info.name).load()
            lag = await log.pending(info.filters(settings.subjects), position.checkpoint)
            rows.append(
                {
                    "projection": info.name,
                    "checkpoint": position.checkpoint,
                    "lag": lag,
                    "parked": position.parked,
                    "blocked_subjects": len(position.blocked),
                }
            )
    return rows


@app.command()
def rebuild(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=f"Projection to rebuild: {', '.join(PROJECTIONS)}"),
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:
    """Rebuild a read model from the log, without downtime.

    The log is replayed into a new generation beside the live one; when it has
    caught up, readers are switched to it in one atomic step. The live service
    keeps serving (and projecting) throughout.

    Example:  tenantctl projection rebuild config
    """
    info = PROJECTIONS.get(name)
    if info is None:
        raise typer.BadParameter(f"no projection {name!r}; known: {', '.join(PROJECTIONS)}")
    result = run(_rebuild(settings_from(ctx), info))
    emit(result, output, f"rebuilt {name}")


async def _rebuild(settings: Settings, info: ProjectionInfo) -> dict[str, Any]:
    async with session(settings) as s:
        rebuild = RedisRebuild(
            lambda keys: info.make(settings.subjects, keys),
            s.nc, s.redis, s.log, settings.keys, EVENTS,
        )  # fmt: skip
        with Progress(transient=True) as progress:
            task = progress.add_task(f"replaying {info.name}", total=None)

            def advance(done: int, head: int) -> None:
                progress.update(task, completed=done, total=head)

            result = await rebuild.run(advance)
    return {
        "projection": info.name,
        "events": result.events,
        "keys_switched": result.keys,
        "seconds": round(result.seconds, 2),
    }
