"""`tenantctl secrets`: master-key rotation for secret config values."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

import orjson
import typer

from tenantplane.contracts.config import ShowSealingKey
from tenantplane.services.cli.context import connected, default_actor, run, session, settings_from
from tenantplane.services.cli.options import parse_value
from tenantplane.services.cli.output import Format, emit, out
from tenantplane.services.config.secrets import SecretBox, new_master_key
from tenantplane.services.runtime.database import migrated_database
from tenantplane.services.runtime.errors import InvalidRequest
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.security.audit import RevealAudit
from tenantplane.services.security.sealing import seal_text

app = typer.Typer(
    help="Secrets: master keys and their rotation, and who revealed what.", no_args_is_help=True
)


@app.command()
def audit(
    ctx: typer.Context,
    tenant: str = typer.Option(None, "--tenant", "-t", help="Only this tenant's reveals"),
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:
    """List every reveal of tenants' secrets: when, who (actor and pool), which keys, which job.

    A reveal is recorded before the secrets leave the config service, and kept a
    year and a month.

    Example:  tenantctl secrets audit --tenant acme -o json
    """
    emit(run(_audit(settings_from(ctx), tenant)), output, "reveals")


async def _audit(settings: Settings, tenant: str | None) -> list[dict[str, Any]]:
    async with connected(settings) as (nc, _):
        reveals = RevealAudit(nc.jetstream(), settings.subjects).reveals(tenant)
        return [asdict(r) async for r in reveals]


@app.command("new-key")
def new_key() -> None:
    """Print a fresh master key (to put first in TENANTPLANE_SECRETS_MASTER_KEYS).

    Example:  tenantctl secrets new-key > master.key && chmod 600 master.key
    """
    out.print(new_master_key(), highlight=False)


@app.command("public-key")
def public_key(ctx: typer.Context) -> None:
    """Print the installation's public key for sealing secrets into files.

    What is sealed to it only the config service opens; it changes when the
    first master key does (files sealed before still open while the old master
    key is listed).

    Example:  tenantctl secrets public-key > tenantplane.pub
    """
    out.print(run(_public_key(settings_from(ctx))), highlight=False, soft_wrap=True)


async def _public_key(settings: Settings) -> str:
    async with session(settings) as s:
        reply = await s.commands.send(ShowSealingKey(actor=default_actor()))
    return str((reply.result or {})["public_key"])


@app.command()
def seal(
    ctx: typer.Context,
    value: str = typer.Argument(..., help="The value (JSON, else a string); - reads stdin"),
    key: str = typer.Option(
        None, "--public-key", help="Seal to this key (from `secrets public-key`) without asking"
    ),
) -> None:
    """Seal a secret value for a file that `config apply` takes (sealed-secrets style).

    The text printed can be committed: only the installation's config service
    opens it, when a secret key of an applied file holds it. Applying it again
    changes nothing while the value is the same.

    Example:  echo "secret.api_key=$(tenantctl secrets seal hunter2)" >> tenants/acme.properties
    Example:  echo -n 's3cr3t' | tenantctl secrets seal - --public-key "$(cat tenantplane.pub)"
    """
    text = sys.stdin.read() if value == "-" else value
    public = key or run(_public_key(settings_from(ctx)))
    sealed = seal_text(public, orjson.dumps(parse_value(text)))
    out.print(sealed, highlight=False, soft_wrap=True)


@app.command()
def rewrap(ctx: typer.Context) -> None:
    """Re-wrap every tenant data key with the first master key.

    Rotation: put the new key first and keep the old one after it
    (TENANTPLANE_SECRETS_MASTER_KEYS=NEW,OLD), restart the config service, run
    this, then drop OLD. Secret values in the log are not touched: only the
    data keys that seal them are re-wrapped.

    Example:  TENANTPLANE_SECRETS_MASTER_KEYS=$NEW,$OLD tenantctl secrets rewrap
    """
    count = run(_rewrap(settings_from(ctx)))
    out.print(f"re-wrapped {count} data keys with the first master key")


async def _rewrap(settings: Settings) -> int:
    keys = settings.master_keys()
    if not keys:
        raise InvalidRequest("set TENANTPLANE_SECRETS_MASTER_KEYS (new key first) to rewrap")
    async with migrated_database(settings) as engine:
        return await SecretBox(engine, settings.namespace, keys).rewrap()
