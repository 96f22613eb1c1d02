"""`tenantctl contracts`: the wire contracts, for other languages."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import typer

from tenantplane.contracts import COMMANDS, EVENTS
from tenantplane.contracts.domains import Domain
from tenantplane.contracts.schema import export as export_schemas
from tenantplane.contracts.schema import schemas
from tenantplane.services.asyncapi import document
from tenantplane.services.cli.context import settings_from
from tenantplane.services.cli.output import out
from tenantplane.services.config.schema import ConfigSchema
from tenantplane.services.runtime.domain_refs import load_domain

app = typer.Typer(help="Inspect and export the wire contracts.", no_args_is_help=True)


@app.command()
def export(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="Directory to write the schemas to"),
    domain: list[str] = typer.Option(
        [],
        "--domain",
        help="A service's domain, module:ATTR (repeatable; also TENANTPLANE_DOMAINS)",
    ),
) -> None:
    """Write the JSON Schema of every event (in its envelope), command and domain event.

    The config commands carry the keys of the config schema (TENANTPLANE_CONFIG_SCHEMA_FILE).

    Example:  tenantctl contracts export ./schemas --domain billing.events:BILLING
    """
    settings = settings_from(ctx)
    domains = _domains([*settings.domains, *domain])
    found = schemas(EVENTS, COMMANDS, domains)
    found.update(ConfigSchema.load(settings.config_schema_file).command_schemas())
    count = export_schemas(directory, found)
    out.print(f"wrote {count} schemas to {directory}/")


def _domains(references: list[str]) -> list[Domain]:
    """The domains `references` name, each once; two different domains of one name are refused."""
    found: dict[str, Domain] = {}
    for reference in references:
        loaded = load_domain(reference)
        if found.setdefault(loaded.name, loaded) is not loaded:
            raise ValueError(f"domain {reference!r}: another domain named {loaded.name} is listed")
    return list(found.values())


@app.command("list")
def list_types() -> None:
    """List every event type with its current schema version.

    Example:  tenantctl contracts list -o json
    """
    for name, event_cls in sorted(EVENTS.types.items()):
        out.print(f"{name}  v{event_cls.schema_version}  ({event_cls.family})")


@app.command()
def asyncapi(
    ctx: typer.Context,
    path: Path = typer.Argument(None, help="File to write [default: standard output]"),
    domain: list[str] = typer.Option(
        [],
        "--domain",
        help="A service's domain, module:ATTR (repeatable; also TENANTPLANE_DOMAINS)",
    ),
) -> None:
    """Write the AsyncAPI 3 document of every subject: commands, events, notices, control.

    Payloads are the schemas `contracts export` writes (the config schema's keys included).

    Example:  tenantctl contracts asyncapi docs/asyncapi.json
    """
    settings = settings_from(ctx)
    spec = document(
        settings.subjects,
        _version(),
        _domains([*settings.domains, *domain]),
        ConfigSchema.load(settings.config_schema_file).command_schemas(),
    )
    text = json.dumps(spec, indent=2)
    if path is None:
        out.print_json(text)
    else:
        path.write_text(text + "\n")
        out.print(f"wrote {path}")


def _version() -> str:
    """The installed release: the document's version."""
    try:
        return version("tenantplane")
    except PackageNotFoundError:
        return "0.0.0+unknown"
