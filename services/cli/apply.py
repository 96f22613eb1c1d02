"""`tenantctl config apply`: make tenants match a directory of files (GitOps)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tenantplane.contracts.commands import Command
from tenantplane.contracts.config import SetConfig, UnsetConfig
from tenantplane.contracts.tenants import (
    ChangePlan,
    OffboardTenant,
    RegisterTenant,
    SuspendTenant,
)
from tenantplane.services.cli.context import Session, default_actor, run, session, settings_from
from tenantplane.services.cli.output import Format, emit, out
from tenantplane.services.config import PROJECTION as CONFIG_PROJECTION
from tenantplane.services.config.reader import REDACTED
from tenantplane.services.config.schema import ConfigSchema
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.settings import Settings

if TYPE_CHECKING:
    from tenantplane.services.config import gitops

CONCURRENT_TENANTS = 16


def apply(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="Directory of <tenant>.yaml|.json|.properties"),
    env: str = typer.Option(None, "--env", "-e", help="Overlay DIR/ENV/ on the base files"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the diff, change nothing"),
    prune: bool = typer.Option(
        True, "--prune/--no-prune", help="Remove keys the files do not name [default: prune]"
    ),
    offboard: bool = typer.Option(
        False, "--offboard-missing",
        help="Offboard tenants that have no file, where --prune suspends them",
    ),
    reason: str = typer.Option("gitops apply", "--reason", "-r"),
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:  # fmt: skip
    """Make tenants match a directory: create missing ones, set and remove keys.

    Every file is parsed and validated first; any problem (reported with file
    and line) and nothing is applied. Only differences are sent, so applying
    the same directory twice changes nothing the second time. A tenant whose
    file is gone is listed, and with --prune suspended (--offboard-missing:
    offboarded). When DIR is in a Git repository, every event of the apply
    records the commit and its author.

    Example:  tenantctl config apply ./tenants --env prod --dry-run
    """
    # Loaded here, not with `tenantctl config`: parsing files is all this command's.
    from tenantplane.services.config import gitops

    settings = settings_from(ctx)
    schema = ConfigSchema.load(settings.config_schema_file)
    desired = gitops.load(directory, schema, env)
    action = ("offboard" if offboard else "suspend") if prune else None
    origin = _origin(directory, reason)
    result = run(
        _apply(settings, desired, schema, dry_run=dry_run, prune=prune, origin=origin,
               missing=action)
    )  # fmt: skip
    emit(result["diff"], output, "changes")
    if output is not Format.JSON:
        verb = "would change" if dry_run else "changed"
        out.print(f"{verb} {result['tenants']} of {len(desired)} tenants ({result['summary']})")


async def _apply(
    settings: Settings,
    desired: list[gitops.Desired],
    schema: ConfigSchema,
    *,
    dry_run: bool,
    prune: bool,
    origin: dict[str, Any],
    missing: str | None,
) -> dict[str, Any]:
    """Plan, and unless `dry_run` execute; `missing`: what to do with the tenants that
    have no file (suspend, offboard, or None to only list them)."""
    from tenantplane.services.config import gitops

    async with session(settings) as s:
        found = await s.reader.snapshot([d.tenant_id for d in desired])
        current = {t: gitops.Current(view.plan, config) for t, (view, config) in found.items()}
        plans = gitops.plan(desired, current, prune, schema.is_secret)
        wanted = {d.tenant_id for d in desired}
        gone = [v for v in await s.reader.tenants() if v.tenant_id not in wanted]
        gone = [v for v in gone if v.status == "active" or missing == "offboard"]
        if dry_run:
            # Whether a secret differs only the service can tell: each is shown as sent.
            changed = {p.tenant_id: set(p.secrets) for p in plans}
        else:
            changed = await _execute(s, plans, origin)
            if missing is not None:
                await _retire(s, [v.tenant_id for v in gone], missing, origin)
    plans = [p for p in plans if not p.empty or changed[p.tenant_id]]
    shown = "<secret: compared on apply>" if dry_run else "<secret changed>"
    diff = _diff(plans, changed, shown)
    diff += [_row(v.tenant_id, missing or "no file", "", v.status, None) for v in gone]
    summary = _summary(plans, changed) + f", {len(gone)} without a file"
    return {"diff": diff, "tenants": len(plans) + len(gone), "summary": summary}


async def _retire(s: Session, tenants: list[str], action: str, origin: dict[str, Any]) -> None:
    """Suspend (or offboard) the tenants whose file is gone."""
    command_cls = OffboardTenant if action == "offboard" else SuspendTenant
    for tenant_id in tenants:
        await s.commands.send(command_cls(tenant_id=tenant_id, actor=default_actor(), **origin))


def _origin(directory: Path, reason: str) -> dict[str, Any]:
    """The reason and correlation id of every command of the apply: with the Git commit
    and author of DIR when it is in a repository (and whether its files differ)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=10, check=False)  # fmt: skip
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "HEAD")
    except OSError:  # no git on this machine
        commit = ""
    if not commit:
        return {"reason": reason}
    author = git("log", "-1", "--format=%an <%ae>")
    dirty = "+changes" if git("status", "--porcelain", "--", ".") else ""
    return {
        "reason": f"{reason} (git {commit[:12]}{dirty} by {author})"[:2048],
        "correlation_id": f"git:{commit}",
    }


async def _execute(
    s: Session, plans: list[gitops.TenantPlan], origin: dict[str, Any]
) -> dict[str, set[str]]:
    """Send each tenant's commands; returns each tenant's secrets that changed."""
    from rich.progress import Progress

    limit = asyncio.Semaphore(CONCURRENT_TENANTS)
    seqs: list[int] = [0]
    changed: dict[str, set[str]] = {}
    with Progress(transient=True, disable=len(plans) < 10) as progress:
        task = progress.add_task("applying", total=len(plans))

        async def one(plan: gitops.TenantPlan) -> None:
            async with limit:
                for command in _commands(plan, default_actor(), origin):
                    reply = await s.commands.send(command)
                    seqs.append(reply.seq or 0)
                changed[plan.tenant_id] = set()
                for key, value in plan.secrets.items():  # one by one: which ones changed
                    who = _who(plan, default_actor(), origin)
                    secret = SetConfig(values={key: value}, **who)
                    reply = await s.commands.send(secret)
                    if reply.events:
                        changed[plan.tenant_id].add(key)
                        seqs.append(reply.seq or 0)
                progress.advance(task)

        await asyncio.gather(*(one(p) for p in plans))
    settings = s.settings
    if max(seqs):
        await wait_applied(
            s.nc, s.redis, settings.subjects, settings.keys, CONFIG_PROJECTION, max(seqs), 30
        )
    return changed


def _who(plan: gitops.TenantPlan, actor: str, origin: dict[str, Any]) -> dict[str, Any]:
    return {"tenant_id": plan.tenant_id, "actor": actor, **origin}


def _commands(plan: gitops.TenantPlan, actor: str, origin: dict[str, Any]) -> list[Command]:
    """The commands of a plan, but for its secrets (sent one by one, see `_execute`)."""
    who = _who(plan, actor, origin)
    commands: list[Command] = []
    if plan.create is not None:
        created = plan.create
        commands.append(
            RegisterTenant(
                display_name=created.display_name, plan=created.plan, labels=created.labels, **who
            )
        )
    if plan.plan is not None:
        commands.append(ChangePlan(plan=plan.plan, **who))
    if plan.set:
        commands.append(SetConfig(values=plan.set, **who))
    if plan.unset:
        commands.append(UnsetConfig(keys=tuple(plan.unset), **who))
    return commands


def _diff(
    plans: list[gitops.TenantPlan], secrets: dict[str, set[str]], shown: str
) -> list[dict[str, Any]]:
    """One row per change; a secret's value is never shown (`shown` stands for it)."""
    rows: list[dict[str, Any]] = []
    for plan in plans:
        if plan.create is not None:
            rows.append(_row(plan.tenant_id, "create", "", None, f"plan {plan.create.plan}"))
        if plan.plan is not None:
            rows.append(_row(plan.tenant_id, "plan", "", None, plan.plan))
        for key, value in sorted(plan.set.items()):
            action = "change" if plan.old.get(key) is not None else "add"
            rows.append(_row(plan.tenant_id, action, key, plan.old.get(key), value))
        for key in sorted(secrets[plan.tenant_id]):
            rows.append(_row(plan.tenant_id, "secret", key, REDACTED, shown))
        rows.extend(_row(plan.tenant_id, "remove", k, plan.old[k], None) for k in plan.unset)
    return rows


def _row(tenant: str, action: str, key: str, old: Any, new: Any) -> dict[str, Any]:
    return {"tenant": tenant, "action": action, "key": key, "old": old, "new": new}


def _summary(plans: list[gitops.TenantPlan], secrets: dict[str, set[str]]) -> str:
    created = sum(1 for p in plans if p.create is not None)
    keys = sum(len(p.set) + len(secrets[p.tenant_id]) for p in plans)
    removed = sum(len(p.unset) for p in plans)
    return f"{created} created, {keys} keys set, {removed} removed"
