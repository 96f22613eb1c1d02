"""Options and the send-and-report step shared by the commands that change state."""

from __future__ import annotations

from typing import Any

import typer

from tenantplane.contracts.commands import Command
from tenantplane.services.cli.context import run, session
from tenantplane.services.cli.output import Format, emit, out
from tenantplane.services.config.projection import NAME as CONFIG_PROJECTION
from tenantplane.services.runtime.settings import Settings

Reason = typer.Option("", "--reason", "-r", help="Why (kept in the history)")
Wait = typer.Option(True, "--wait/--no-wait", help="Return once the read model shows the change")
Output = typer.Option(Format.TABLE, "--output", "-o")
# The point a revert or rollback goes back to (see runtime/timetravel.py).
To = typer.Option(
    ..., "--to", help="The point: a sequence (42), a time (2026-11-23T08:00Z) or an age (2h)"
)


def send_and_report(
    settings: Settings,
    command: Command,
    wait: bool,
    output: Format,
    projection: str = CONFIG_PROJECTION,
) -> None:
    """Send `command`, wait for the read model if asked, and print the outcome."""

    async def go() -> dict[str, Any]:
        async with session(settings) as s:
            reply = await s.send(command, wait=wait, projection=projection)
            return {"ok": reply.ok, "seq": reply.seq, "replayed": reply.replayed}

    result = run(go())
    if output is Format.JSON:
        emit(result, output)
    elif result["seq"] is None:
        out.print(f"{command.name}: no change")
    else:
        out.print(f"{command.name} ok (seq {result['seq']})")
