"""`tenantctl dlq`: events that projections parked."""

from __future__ import annotations

import orjson
import typer
from nats.errors import NoRespondersError, TimeoutError

from services.cli.context import connected, run, settings_from
from services.cli.output import Format, emit
from services.runtime.deadletters import DeadLetters
from services.runtime.errors import CommandFailed, EventLogUnavailable
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


@app.command()
def redrive(
    ctx: typer.Context,
    projection: str = typer.Argument(..., help="The projection whose dead letters to apply"),
    tenant: str = typer.Option(None, "--tenant", "-t", help="Only this tenant's"),
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:
    """Apply parked events again, in order, once the cause is fixed.

    The running projector does it, so the read model keeps one writer. A subject
    is unblocked only when all of its parked events now apply.

    Example:  tenantctl dlq redrive config --tenant acme
    """
    emit(run(_redrive(settings_from(ctx), projection, tenant)), output, "re-drive")


async def _redrive(settings: Settings, projection: str, tenant: str | None) -> dict[str, object]:
    subject = settings.subjects.control(projection, "redrive")
    async with connected(settings) as (nc, _):
        try:
            msg = await nc.request(subject, orjson.dumps({"tenant": tenant}), timeout=30)
        except (NoRespondersError, TimeoutError) as e:
            raise EventLogUnavailable(f"no running {projection} projector answered") from e
    result: dict[str, object] = orjson.loads(msg.data)
    if not result.get("ok"):
        raise CommandFailed(f"re-drive failed: {result.get('error')}")
    return result
