"""`tenantctl tenant`: onboard, suspend, resume, re-plan and offboard tenants."""

from __future__ import annotations

from typing import Any

import typer

from tenantplane.contracts.tenants import (
    ChangePlan,
    OffboardTenant,
    RegisterTenant,
    ResumeTenant,
    SuspendTenant,
)
from tenantplane.services.cli.context import default_actor, run, session, settings_from
from tenantplane.services.cli.options import Output, Reason, Wait, send_and_report
from tenantplane.services.cli.output import Format, emit

app = typer.Typer(help="Tenant lifecycle: create, show, list, suspend, resume, plan, offboard.")


@app.command()
def create(
    ctx: typer.Context,
    tenant: str = typer.Argument(..., help="Tenant id: lowercase letters, digits, hyphens"),
    name: str = typer.Option(None, "--name", "-n", help="Display name [default: the id]"),
    plan: str = typer.Option("standard", "--plan", "-p"),
    label: list[str] = typer.Option([], "--label", "-l", help="key=value, repeatable"),
    reason: str = Reason,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Onboard a tenant.

    Example:  tenantctl tenant create acme --name "Acme Ltd" --plan gold -l region=eu
    """
    labels = dict(_pair(item) for item in label)
    command = RegisterTenant(
        tenant_id=tenant,
        display_name=name or tenant,
        plan=plan,
        labels=labels,
        actor=default_actor(),
        reason=reason,
    )
    send_and_report(settings_from(ctx), command, wait, output)


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise typer.BadParameter(f"{item!r} is not key=value")
    return key, value


def _transition(name: str, command_cls: type[SuspendTenant | ResumeTenant], doc: str) -> None:
    """Register a lifecycle command that takes only the tenant (suspend, resume)."""

    def command(
        ctx: typer.Context,
        tenant: str,
        reason: str = Reason,
        wait: bool = Wait,
        output: Format = Output,
    ) -> None:
        sent = command_cls(tenant_id=tenant, actor=default_actor(), reason=reason)
        send_and_report(settings_from(ctx), sent, wait, output)

    command.__doc__ = doc
    app.command(name)(command)


_transition(
    "suspend",
    SuspendTenant,
    """Suspend an active tenant (its config stays; its jobs stop).

    Example:  tenantctl tenant suspend acme -r "unpaid invoice"
    """,
)
_transition(
    "resume",
    ResumeTenant,
    """Resume a suspended tenant.

    Example:  tenantctl tenant resume acme -r "paid"
    """,
)


@app.command()
def plan(
    ctx: typer.Context,
    tenant: str,
    new_plan: str = typer.Argument(..., metavar="PLAN"),
    reason: str = Reason,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Move a tenant to another plan.

    Example:  tenantctl tenant plan acme enterprise -r "upgraded by sales"
    """
    command = ChangePlan(tenant_id=tenant, plan=new_plan, actor=default_actor(), reason=reason)
    send_and_report(settings_from(ctx), command, wait, output)


@app.command()
def offboard(
    ctx: typer.Context,
    tenant: str,
    reason: str = Reason,
    shred: bool = typer.Option(
        False,
        "--shred-secrets",
        help="Destroy the tenant's data key: its secrets become unreadable",
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation"),
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Offboard a tenant: its read-model state is removed, its history stays in the log.

    Example:  tenantctl tenant offboard acme --shred-secrets -r "contract ended" --yes
    """
    if not yes:
        typer.confirm(f"Offboard tenant {tenant}?", abort=True)
    command = OffboardTenant(
        tenant_id=tenant, shred_secrets=shred, actor=default_actor(), reason=reason
    )
    send_and_report(settings_from(ctx), command, wait, output)


@app.command()
def show(ctx: typer.Context, tenant: str, output: Format = Output) -> None:
    """Show one tenant's status, plan, labels and versions.

    Example:  tenantctl tenant show acme -o json
    """

    async def go() -> dict[str, Any]:
        async with session(settings_from(ctx)) as s:
            return (await s.reader.tenant(tenant)).to_dict()

    emit(run(go()), output, tenant)


@app.command("list")
def list_tenants(ctx: typer.Context, output: Format = Output) -> None:
    """List every tenant.

    Example:  tenantctl tenant list -o json
    """

    async def go() -> list[dict[str, Any]]:
        async with session(settings_from(ctx)) as s:
            return [t.to_dict() for t in await s.reader.tenants()]

    emit(run(go()), output, "tenants")
