"""`tenantctl contracts`: the wire contracts, for other languages."""

from __future__ import annotations

from pathlib import Path

import typer

from contracts import COMMANDS, EVENTS
from contracts.schema import export as export_schemas
from services.cli.output import out

app = typer.Typer(help="Inspect and export the wire contracts.", no_args_is_help=True)


@app.command()
def export(directory: Path = typer.Argument(..., help="Directory to write the schemas to")) -> None:
    """Write the JSON Schema of every event (in its envelope) and command.

    Example:  tenantctl contracts export ./schemas
    """
    count = export_schemas(directory, EVENTS, COMMANDS)
    out.print(f"wrote {count} schemas to {directory}/")


@app.command("list")
def list_types() -> None:
    """List every event type with its current schema version."""
    for name, event_cls in sorted(EVENTS.types.items()):
        out.print(f"{name}  v{event_cls.schema_version}  ({event_cls.family})")
