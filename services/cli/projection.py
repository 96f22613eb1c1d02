"""`tenantctl projection`: where each read model stands."""

from __future__ import annotations

from typing import Any

import typer

from contracts import EVENTS
from services.cli.context import run, session, settings_from
from services.cli.output import Format, emit
from services.projections import PROJECTIONS
from services.runtime.eventlog import EventLog
from services.runtime.settings import Settings
from services.runtime.stores.redis import RedisStore

app = typer.Typer(help="Projections (read models): status, lag, dead letters.")


@app.command()
def status(
    ctx: typer.Context, output: Format = typer.Option(Format.TABLE, "--output", "-o")
) -> None:
    """Show each projection's checkpoint, lag, parked events and blocked subjects.

    Lag is the number of events the projection has still to apply.

    Example:  tenantctl projection status -o json
    """
    emit(run(_status(settings_from(ctx))), output, "projections")


async def _status(settings: Settings) -> list[dict[str, Any]]:
    rows = []
    async with session(settings) as s:
        log = EventLog(s.nc.jetstream(), settings.subjects, EVENTS)
        for info in PROJECTIONS:
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
