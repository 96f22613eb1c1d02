"""`tenantctl route`: per-tenant version routing for gray releases."""

from __future__ import annotations

from typing import Any

import typer

from tenantplane.contracts.commands import Command
from tenantplane.contracts.routing import (
    PinTenant,
    RegisterVersion,
    RetireVersion,
    Rollout,
    SetDefault,
    UnpinTenant,
)
from tenantplane.services.cli.context import Session, default_actor, run, session, settings_from
from tenantplane.services.cli.options import Output, Reason, To, Wait, send_and_report
from tenantplane.services.cli.output import Format, emit, out
from tenantplane.services.router.projection import NAME as ROUTER_PROJECTION
from tenantplane.services.router.rollback import rollback_steps, route_history, table_at
from tenantplane.services.router.sdk import Resolver
from tenantplane.services.runtime.stores.redis_ops import as_text
from tenantplane.services.runtime.timetravel import parse_point

app = typer.Typer(
    help="Per-tenant version routing: register, pin, default, rollout, retire, rollback."
)


def _send(ctx: typer.Context, command: Command, wait: bool, output: Format) -> None:
    send_and_report(settings_from(ctx), command, wait, output, ROUTER_PROJECTION)


def _who(reason: str) -> dict[str, str]:
    return {"actor": default_actor(), "reason": reason}


@app.command()
def register(
    ctx: typer.Context,
    service: str,
    version: str,
    upstream: str = typer.Option(
        ..., "--upstream", "-u", help="Base URL, e.g. http://billing-v2:8080"
    ),
    label: list[str] = typer.Option([], "--label", "-l", help="key=value, repeatable"),
    reason: str = Reason,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Register a version of a service and where it is reached.

    Example:  tenantctl route register billing v2 --upstream http://billing-v2:8080
    """
    labels = dict(item.split("=", 1) for item in label if "=" in item)
    command = RegisterVersion(
        target=service, version=version, upstream=upstream, labels=labels, **_who(reason)
    )
    _send(ctx, command, wait, output)


@app.command()
def pin(
    ctx: typer.Context, service: str, tenant: str, version: str,
    reason: str = Reason, wait: bool = Wait, output: Format = Output,
) -> None:  # fmt: skip
    """Pin a tenant to a version (it wins over rollout and default).

    Example:  tenantctl route pin billing acme v2 -r "migrated acme's data"
    """
    command = PinTenant(target=service, tenant_id=tenant, version=version, **_who(reason))
    _send(ctx, command, wait, output)


@app.command()
def unpin(
    ctx: typer.Context, service: str, tenant: str,
    reason: str = Reason, wait: bool = Wait, output: Format = Output,
) -> None:  # fmt: skip
    """Remove a tenant's pin; it follows rollout and default again.

    Example:  tenantctl route unpin billing acme
    """
    _send(ctx, UnpinTenant(target=service, tenant_id=tenant, **_who(reason)), wait, output)


@app.command()
def default(
    ctx: typer.Context, service: str, version: str,
    reason: str = Reason, wait: bool = Wait, output: Format = Output,
) -> None:  # fmt: skip
    """Set the version of tenants with no pin and outside any rollout.

    Example:  tenantctl route default billing v1
    """
    _send(ctx, SetDefault(target=service, version=version, **_who(reason)), wait, output)


@app.command()
def rollout(
    ctx: typer.Context,
    service: str,
    version: str,
    percent: float = typer.Option(..., "--percent", "-p", min=0, max=100, help="0 ends it"),
    cohort: str = typer.Option(
        None,
        "--cohort",
        help="Order tenants by this cohort (a config rollout naming it reaches the same "
        "tenants) [default: the service's own]",
    ),
    reason: str = Reason,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Send a sticky percentage of tenants to a version; raising it only adds tenants.

    Example:  tenantctl route rollout billing v2 --percent 10
    Example:  tenantctl route rollout billing v2 --percent 10 --cohort release-42
    """
    command = Rollout(
        target=service, version=version, percent=percent, cohort=cohort, **_who(reason)
    )
    _send(ctx, command, wait, output)


@app.command()
def retire(
    ctx: typer.Context, service: str, version: str,
    reason: str = Reason, wait: bool = Wait, output: Format = Output,
) -> None:  # fmt: skip
    """Retire a version; refused while tenants are pinned to it, a rollout targets it,
    or it is the default.

    Example:  tenantctl route retire billing v1 -r "all tenants on v2"
    """
    _send(ctx, RetireVersion(target=service, version=version, **_who(reason)), wait, output)


@app.command()
def history(ctx: typer.Context, service: str, output: Format = Output) -> None:
    """Who changed a service's routing, when and why: every routing event, from the log.

    Example:  tenantctl route history billing -o json
    """

    async def go() -> list[dict[str, Any]]:
        async with session(settings_from(ctx)) as s:
            return [c.to_dict() for c in await route_history(s.log, service)]

    emit(run(go()), output, f"{service} routing history")


@app.command()
def rollback(
    ctx: typer.Context,
    service: str,
    to: str = To,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the steps, change nothing"),
    reason: str = Reason,
    output: Format = Output,
) -> None:
    """Put a service's routing (default, rollout, pins) back as it was at a point.

    The rollback is the route commands that lead from now to then, each checked
    by the router and recorded in `route history` with the reason
    `rollback to <point>`. A version retired since cannot come back (register a
    new one). Run again after a failure, it sends only what is left.

    Example:  tenantctl route rollback billing --to 2h --dry-run
    Example:  tenantctl route rollback billing --to 1841 -r "v3 errors"
    """
    seq, moment = parse_point(to)
    why = f"rollback to {to}" + (f": {reason}" if reason else "")

    async def go() -> list[dict[str, Any]]:
        async with session(settings_from(ctx)) as s:
            now = await table_at(s.log, service)
            then = await table_at(s.log, service, seq=seq, at=moment)
            steps = rollback_steps(now, then, actor=default_actor(), reason=why)
            rows = []
            for step in steps:
                row = step.model_dump(exclude={"idempotency_key", "actor", "reason",
                                               "correlation_id", "target"})  # fmt: skip
                rows.append({"step": step.name, **row})
                if not dry_run:
                    await s.send(step, wait=False, projection=ROUTER_PROJECTION)
            return rows

    rows = run(go())
    emit(rows, output, f"{service}: rollback to {to}")
    if output is not Format.JSON:
        verb = "would send" if dry_run else "sent"
        out.print(f"{verb} {len(rows)} steps" if rows else "no change: routing is as it was")


@app.command()
def resolve(ctx: typer.Context, service: str, tenant: str, output: Format = Output) -> None:
    """Show where a tenant's calls to a service go, and which rule decided.

    Example:  tenantctl route resolve billing acme
    """

    async def go() -> dict[str, Any]:
        async with session(settings_from(ctx)) as s:
            table = await _resolver(s).table(service)
            found = table.resolve(tenant)
            return {"service": service, "tenant": tenant, "version": found.version,
                    "upstream": found.upstream, "via": found.via}  # fmt: skip

    emit(run(go()), output, "route")


@app.command()
def show(ctx: typer.Context, service: str, output: Format = Output) -> None:
    """Show a service's versions, rules, and how many tenants land on each version.

    Example:  tenantctl route show billing -o json
    """

    async def go() -> list[dict[str, Any]]:
        async with session(settings_from(ctx)) as s:
            table = await _resolver(s).table(service)
            tenants = [as_text(t) for t in await s.redis.smembers(s.settings.keys.tenants())]
        return table.summary(tenants)

    emit(run(go()), output, f"{service} routes")


def _resolver(s: Session) -> Resolver:
    """A resolver on the session's connections (one table read, no subscription)."""
    return Resolver(s.nc, s.redis, s.settings.subjects, s.settings.keys)


@app.command()
def gateway(
    ctx: typer.Context,
    port: int = typer.Option(8080, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    header: str = typer.Option("X-Tenant-ID", "--header", help="Where the tenant id comes in"),
) -> None:
    """Run the example gateway: /<service>/<path> goes to the tenant's version.

    Example:  tenantctl route gateway --port 8080 &
              curl -H 'X-Tenant-ID: acme' localhost:8080/billing/invoices
    """
    import uvicorn

    from tenantplane.services.router.gateway import build_gateway

    settings = settings_from(ctx)

    async def main() -> None:
        resolver = await Resolver.connect(settings)
        try:
            config = uvicorn.Config(build_gateway(resolver, header), host=host, port=port)
            await uvicorn.Server(config).serve()
        finally:
            await resolver.close()

    run(main())
