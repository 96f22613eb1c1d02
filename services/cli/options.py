"""Options and the send-and-report step shared by the commands that change state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import typer

from tenantplane.contracts.commands import Command
from tenantplane.services.cli.context import Session, run, session
from tenantplane.services.cli.output import Format, emit, out, print_warning
from tenantplane.services.config import PROJECTION as CONFIG_PROJECTION
from tenantplane.services.runtime.settings import Settings

Reason = typer.Option("", "--reason", "-r", help="Why (kept in the history)")
Wait = typer.Option(True, "--wait/--no-wait", help="Return once the read model shows the change")
Output = typer.Option(Format.TABLE, "--output", "-o")
# The point a revert or rollback goes back to (see runtime/timetravel.py).
To = typer.Option(
    ..., "--to", help="The point: a sequence (42), a time (2026-11-23T08:00Z) or an age (2h)"
)


def parse_value(text: str) -> Any:
    """A CLI value: JSON when it parses (5, true, [1], {"a": 1}), else the plain string."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def assignments(
    items: list[str], parse: Callable[[str], Any] = parse_value, what: str = "KEY=VALUE"
) -> dict[str, Any]:
    """`KEY=VALUE` arguments as a mapping, each value parsed by `parse`."""
    found: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not {what}")
        if key in found:
            raise typer.BadParameter(f"{key} is given twice")
        found[key] = parse(text)
    return found


def send_and_report(
    settings: Settings,
    command: Command,
    wait: bool,
    output: Format,
    projection: str = CONFIG_PROJECTION,
    notes: Callable[[Session], Awaitable[list[str]]] | None = None,
) -> None:
    """Send `command`, wait for the read model if asked, and print the outcome, then
    what `notes` finds worth a warning."""

    async def go() -> tuple[dict[str, Any], list[str]]:
        async with session(settings) as s:
            reply = await s.send(command, wait=wait, projection=projection)
            said = await notes(s) if notes is not None else []
            return {"ok": reply.ok, "seq": reply.seq, "replayed": reply.replayed}, said

    result, said = run(go())
    for note in said:
        print_warning(note)
    if output is Format.JSON:
        emit(result, output)
    elif result["seq"] is None:
        out.print(f"{command.name}: no change")
    else:
        out.print(f"{command.name} ok (seq {result['seq']})")
