"""`tenantctl config`: read and change tenant configuration."""

from __future__ import annotations

from typing import Any

import orjson
import typer

from contracts.config import SetConfig, UnsetConfig
from services.cli.context import default_actor, run, session, settings_from
from services.cli.output import Format, emit, out
from services.cli.tenant import Output, Reason, Wait, _send

app = typer.Typer(help="Tenant configuration: get, set, unset.")


def parse_value(text: str) -> Any:
    """A CLI value: JSON when it parses (5, true, [1], {"a": 1}), else the plain string."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


@app.command("set")
def set_values(
    ctx: typer.Context,
    tenant: str,
    assignments: list[str] = typer.Argument(..., metavar="KEY=VALUE...", help="Values are JSON"),
    reason: str = Reason,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Set one or more keys; every value is checked against the config schema.

    Example:  tenantctl config set acme rate_limit=50 features='{"beta": true}' -r "ticket 42"
    """
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE")
        values[key] = parse_value(text)
    command = SetConfig(tenant_id=tenant, values=values, actor=default_actor(), reason=reason)
    _send(settings_from(ctx), command, wait, output)


@app.command()
def unset(
    ctx: typer.Context,
    tenant: str,
    keys: list[str] = typer.Argument(..., metavar="KEY..."),
    reason: str = Reason,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Remove keys.

    Example:  tenantctl config unset acme rate_limit
    """
    command = UnsetConfig(tenant_id=tenant, keys=tuple(keys), actor=default_actor(), reason=reason)
    _send(settings_from(ctx), command, wait, output)


@app.command()
def get(
    ctx: typer.Context,
    tenant: str,
    key: str = typer.Argument(None, help="One key [default: all]"),
    output: Format = Output,
) -> None:
    """Show a tenant's config (secret values redacted).

    Example:  tenantctl config get acme -o json
    """

    async def go() -> dict[str, Any]:
        async with session(settings_from(ctx)) as s:
            return await s.reader.config(tenant)

    config = run(go())
    if key is not None:
        if key not in config:
            out.print(f"{key} is not set for {tenant}")
            raise typer.Exit(1)
        config = {key: config[key]}
    emit([{"key": k, "value": v} for k, v in sorted(config.items())], output, f"{tenant} config")
