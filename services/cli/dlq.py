"""`tenantctl dlq`: events that projections parked."""

from __future__ import annotations

import orjson
import typer
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError, TimeoutError

from tenantplane.contracts.discards import DiscardEvent
from tenantplane.services.cli.context import connected, default_actor, run, session, settings_from
from tenantplane.services.cli.output import Format, emit
from tenantplane.services.projections import PROJECTIONS
from tenantplane.services.runtime.deadletters import DeadLetters
from tenantplane.services.runtime.errors import CommandFailed, Unavailable
from tenantplane.services.runtime.settings import Settings

app = typer.Typer(
    help="Dead letters: events a reader could not apply; re-drive them, or discard a bad one."
)


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
    async with connected(settings) as (nc, _):
        return await _ask_redrive(nc, settings, projection, tenant)


async def _ask_redrive(
    nc: NATS, settings: Settings, projection: str, tenant: str | None
) -> dict[str, object]:
    """Have the running projector re-drive its dead letters; what it did."""
    subject = settings.subjects.control(projection, "redrive")
    try:
        msg = await nc.request(subject, orjson.dumps({"tenant": tenant}), timeout=30)
    except (NoRespondersError, TimeoutError) as e:
        raise Unavailable(f"no running {projection} projector answered") from e
    result: dict[str, object] = orjson.loads(msg.data)
    if not result.get("ok"):
        raise CommandFailed(f"re-drive failed: {result.get('error')}")
    result.pop("ok", None)
    return {"projection": projection, **result}


@app.command()
def discard(
    ctx: typer.Context,
    seq: int = typer.Argument(..., help="Stream sequence of the event (see `dlq list`)"),
    reason: str = typer.Option(..., "--reason", "-r", help="Why it is discarded (kept)"),
    stream: str = typer.Option("control", "--stream", help="control or jobs"),
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:
    """Discard an event that cannot be read, so what waits behind it goes on.

    The log is never rewritten: a void marker (with who and why) is appended,
    and every reader skips the event from then on. Only an event that cannot be
    read, or that a projection parked for its own sake, can be discarded. The
    projections then re-drive what waited behind it; the table says what is
    still parked and why.

    Example:  tenantctl dlq discard 1042 --reason "garbage from a test client"
    """
    command = DiscardEvent(seq=seq, stream=stream, reason=reason, actor=default_actor())
    emit(run(_discard(settings_from(ctx), command)), output, "projections")


async def _discard(settings: Settings, command: DiscardEvent) -> list[dict[str, object]]:
    async with session(settings) as s:
        await s.commands.send(command)
        results = []
        for projection in PROJECTIONS:
            try:
                results.append(await _ask_redrive(s.nc, settings, projection, None))
            except Unavailable as e:
                results.append({"projection": projection, "error": e.message})
        return results
