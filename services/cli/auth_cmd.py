"""`tenantctl auth`: the NATS roles of an installation, for a NATS you run yourself."""

from __future__ import annotations

from pathlib import Path

import typer

from tenantplane.services.cli.context import settings_from
from tenantplane.services.cli.output import err
from tenantplane.services.security.natsconfig import Credentials, authorization
from tenantplane.services.security.roles import DomainGrant, RoleBook

app = typer.Typer(help="Least privilege on NATS: each role's permissions and credentials.")


@app.command("nats-config")
def nats_config(
    ctx: typer.Context,
    pool: list[str] = typer.Option(
        [], "--pool", help="A worker pool (repeatable) [default: the settings' pools]"
    ),
    domain: list[str] = typer.Option([], "--domain", help="DOMAIN[:PROJECTION,...] (repeatable)"),
    credentials: Path = typer.Option(
        None, "--credentials", help="Passwords file [default: DATA_DIR/nats-credentials.json]"
    ),
) -> None:
    """Print the `authorization` block of nats-server's configuration for every role.

    Each service, worker pool, the pool reconciler, operators, read-only SDK
    readers and each domain get a user allowed only the subjects their role
    needs; replies go to the user's own inbox prefix `_INBOX_<role>` (set each
    process's TENANTPLANE_NATS_INBOX_PREFIX). Passwords are created once and
    kept (mode 0600) in the credentials file; give each process its role's
    TENANTPLANE_NATS_USER and TENANTPLANE_NATS_PASSWORD.

    Example:  tenantctl auth nats-config --domain billing:billing-balance >> nats.conf
    """
    settings = settings_from(ctx)
    pools = pool or list(settings.pools)
    book = RoleBook(settings.subjects, pools, [DomainGrant.parse(d) for d in domain])
    roles = book.roles()
    path = credentials or settings.data_dir / "nats-credentials.json"
    kept = Credentials.kept(path, roles)
    # Written as is: a console would wrap the long lines of a configuration file.
    typer.echo(authorization(roles, kept), nl=False)
    err.print(f"passwords of {len(roles)} roles in {path}")
