"""How the CLI prints: a rich table for people, JSON for scripts.

Both consoles print text as written: markup is off, so data such as a pattern
'^[a-z]{0,127}$' is never taken for a style tag. Styles are given as `Text`
spans or the `style` argument.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(markup=False)
# Never wrapped: an error is one line, however narrow the terminal.
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


class Format(StrEnum):
    """Output formats every listing command accepts: a table that fits the terminal,
    a wide table (every column, for wide terminals), or JSON (everything)."""

    TABLE = "table"
    WIDE = "wide"
    JSON = "json"


def emit(rows: Sequence[dict[str, Any]] | dict[str, Any], fmt: Format, title: str = "") -> None:
    """Print one record or a list of records.

    Ids (columns named `id` or `*_id`) are never cut or wrapped, however narrow
    the terminal: they are what an operator copies into the next command. Other
    values wrap (a long one folds across lines) and are never cut either.
    """
    if fmt is Format.JSON:
        out.print_json(json.dumps(rows, default=str))
        return
    records = [rows] if isinstance(rows, dict) else list(rows)
    if not records:
        out.print(f"no {title or 'rows'}", style="dim")
        return
    table = _table(title)
    for column in records[0]:
        if column == "id" or column.endswith("_id"):
            width = max(len(column), *(len(_cell(r.get(column)).plain) for r in records))
            table.add_column(Text(column), no_wrap=True, min_width=width)
        else:
            table.add_column(Text(column), overflow="fold")
    for record in records:
        table.add_row(*(_cell(v) for v in record.values()))
    out.print(table)


def emit_record(record: dict[str, Any], fmt: Format, title: str = "") -> None:
    """Print one record: as JSON, or as a table of field and value (fits any terminal)."""
    if fmt is Format.JSON:
        emit(record, fmt)
        return
    table = _table(title, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for field, value in record.items():
        table.add_row(Text(field), _cell(value))
    out.print(table)


def _table(title: str, show_header: bool = True) -> Table:
    """A table ruled only under its header, its columns two spaces apart: what fits
    80 columns best."""
    return Table(
        title=Text(title) if title else None, title_justify="left", show_header=show_header,
        box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False,
    )  # fmt: skip


def print_error(message: str) -> None:
    """Print `message` after a red `error:` on stderr, literally."""
    err.print(Text.assemble(("error:", "red"), " ", message))


def print_warning(message: str) -> None:
    """Print `message` after a yellow `warning:` on stderr, literally."""
    err.print(Text.assemble(("warning:", "yellow"), " ", message))


def _cell(value: Any) -> Text:
    if isinstance(value, dict | list):
        return Text(json.dumps(value, default=str))
    return Text("" if value is None else str(value))
