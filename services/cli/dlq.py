"""`tenantctl dlq`: events that projections parked."""

from __future__ import annotations

import typer

from services.cli.context import connected, run, settings_from
from services.cli.output import Format, emit
from services.runtime.deadletters import DeadLetters
from services.runtime.settings import Settings

app = typer.Typer(help="Inspect dead letters (events a projection could not apply).")


@app.command("list")
def list_letters(
    ctx: typer.Context,
    projection: str = typer.Option(None, "--projection", "-p", help="Only this projection"),
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:
    """List parked events with the reason, oldest first.

    Example:  tenantctl dlq list --projection config -o json
    """
    rows = run(_list(settings_from(ctx), projection))
    emit(rows, output, "dead letters")


async def _list(settings: Settings, projection: str | None) -> list[dict[str, object]]:
    async with connected(settings) as (nc, _):
        letters = DeadLetters(nc.jetstream(), settings.subjects)
        return [
            {
                "projection": d.projection,
                "seq": d.seq,
                "subject": d.subject,
                "reason": d.reason,
                "blocked_behind": d.blocked_behind,
            }
            async for d in letters.list(projection)
        ]
