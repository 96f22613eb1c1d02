"""`tenantctl config`: read and change tenant configuration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import typer

from tenantplane.contracts.config import RevertConfig, SetConfig, UnsetConfig
from tenantplane.contracts.ids import validate_tenant_id
from tenantplane.services.cli.apply import apply
from tenantplane.services.cli.context import Session, default_actor, run, session, settings_from
from tenantplane.services.cli.options import (
    Output,
    Reason,
    To,
    Wait,
    assignments,
    send_and_report,
)
from tenantplane.services.cli.output import Format, emit, out
from tenantplane.services.cli.rollout_cmd import app as rollout_app
from tenantplane.services.config import PROJECTION as CONFIG_PROJECTION
from tenantplane.services.config.history import Change, config_diff, state_at
from tenantplane.services.config.history import history as config_history
from tenantplane.services.config.reader import REDACTED
from tenantplane.services.runtime.errors import InvalidInput, TenantNotFound
from tenantplane.services.runtime.timetravel import parse_point

app = typer.Typer(help="Tenant configuration: get, set, unset, revert, history, apply, rollout.")
app.command()(apply)
app.add_typer(rollout_app, name="rollout")

IfVersion = typer.Option(
    None, "--if-version", min=0,
    help="Apply only if the tenant's config_version is still this (see `tenant show`); "
    "else refused as concurrency_conflict (exit 1) naming the current version",
)  # fmt: skip


@app.command("set")
def set_values(
    ctx: typer.Context,
    tenant: str,
    pairs: list[str] = typer.Argument(
        ..., metavar="KEY=VALUE...", help="Values: JSON when they parse as JSON, else strings"
    ),
    reason: str = Reason,
    if_version: int | None = IfVersion,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Set one or more keys; every value is checked against the config schema.

    Example:  tenantctl config set acme rate_limit=50 features='{"beta": true}' -r "ticket 42"
    Example:  tenantctl config set acme rate_limit=51 --if-version 42   # read-modify-write
    """
    values = assignments(pairs)
    command = SetConfig(
        tenant_id=tenant, values=values, actor=default_actor(), reason=reason,
        if_version=if_version,
    )  # fmt: skip
    send_and_report(settings_from(ctx), command, wait, output, notes=_held(tenant, list(values)))


def _held(tenant: str, keys: list[str]) -> Callable[[Session], Awaitable[list[str]]]:
    """Notes on the keys a rollout holds for `tenant`: their own values do not show yet."""

    async def notes(s: Session) -> list[str]:
        held = await s.redis.hmget(s.settings.keys.tenant_own(tenant), keys)
        return [
            f"{tenant} sees a rollout's value of {key}: its own value shows once the rollout "
            "is aborted (`config rollout list`); a promotion replaces it unless the rollout "
            "protects own values (--except-explicit)"
            for key, under in zip(keys, held, strict=True)
            if under is not None
        ]

    return notes


@app.command()
def unset(
    ctx: typer.Context,
    tenant: str,
    keys: list[str] = typer.Argument(..., metavar="KEY..."),
    reason: str = Reason,
    if_version: int | None = IfVersion,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Remove keys.

    Example:  tenantctl config unset acme rate_limit
    """
    command = UnsetConfig(
        tenant_id=tenant, keys=tuple(keys), actor=default_actor(), reason=reason,
        if_version=if_version,
    )  # fmt: skip
    send_and_report(settings_from(ctx), command, wait, output)


@app.command()
def get(
    ctx: typer.Context,
    tenant: str,
    key: str = typer.Argument(None, help="One key [default: all]"),
    at: str = typer.Option(
        None, "--at", help="As of a sequence (42), a time (2026-11-23T08:00Z) or an age (90m)"
    ),
    output: Format = Output,
) -> None:
    """Show a tenant's config (secret values redacted), now or as it was at some point.

    Without --at it reads the live read model; with --at it replays the
    tenant's events from the log up to that point.

    Example:  tenantctl config get acme -o json
    Example:  tenantctl config get acme rate_limit --at 2h
    """

    async def go() -> dict[str, Any]:
        async with session(settings_from(ctx)) as s:
            if at is None:
                return await s.reader.config(tenant)
            seq, moment = parse_point(at)
            state = await state_at(s.log, validate_tenant_id(tenant), seq=seq, at=moment)
            if not state.exists:
                raise TenantNotFound(f"tenant {tenant} did not exist at {at}")
            return {**state.effective, **dict.fromkeys(state.secrets, REDACTED)}

    config = run(go())
    if key is not None:
        if key not in config:
            out.print(f"{key} is not set for {tenant}")
            raise typer.Exit(1)
        config = {key: config[key]}
    emit([{"key": k, "value": v} for k, v in sorted(config.items())], output, f"{tenant} config")


@app.command()
def revert(
    ctx: typer.Context,
    tenant: str,
    to: str = To,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the diff, change nothing"),
    reason: str = Reason,
    if_version: int | None = IfVersion,
    wait: bool = Wait,
    output: Format = Output,
) -> None:
    """Put a tenant's whole config back as it was at a point of its history, as one event.

    Keys set since are removed, keys removed since come back, and secrets come
    back as they were (sealed again with the current key). The diff is printed
    (secrets only as changed markers; --dry-run, which stops there, lists every
    secret whose sealed form differs, as only the service can compare values). The event's reason
    says what it reverted to, so `config history` shows it.

    Example:  tenantctl config revert acme --to 2h --dry-run
    Example:  tenantctl config revert acme --to 42 -r "undo ticket 42"
    """
    seq, moment = parse_point(to)
    why = f"revert to {to}" + (f": {reason}" if reason else "")

    async def go() -> tuple[list[dict[str, Any]], int | None]:
        async with session(settings_from(ctx)) as s:
            tenant_id = validate_tenant_id(tenant)
            now = await state_at(s.log, tenant_id)
            then = await state_at(s.log, tenant_id, seq=seq, at=moment)
            if not then.exists:
                raise InvalidInput(f"tenant {tenant} had no config at {to}")
            diff = config_diff(now, then)
            if dry_run or not diff:
                return diff, None
            command = RevertConfig(
                tenant_id=tenant_id, to=seq if seq is not None else moment, actor=default_actor(),
                reason=why, if_version=if_version,
            )  # fmt: skip
            reply = await s.send(command, wait=wait, projection=CONFIG_PROJECTION)
            # What did change: a secret whose value is the same kept its ciphertext.
            after = await state_at(s.log, tenant_id, seq=reply.seq) if reply.seq else now
            return config_diff(now, after), reply.seq

    diff, appended = run(go())
    emit(diff, output, f"{tenant}: now -> as at {to}")
    if output is not Format.JSON:
        verb = "would revert" if dry_run else "reverted"
        done = f" (seq {appended})" if appended is not None else ""
        out.print(f"{verb} {len(diff)} keys{done}" if diff else "no change: already as it was")


@app.command()
def history(
    ctx: typer.Context,
    tenant: str,
    key: str = typer.Option(None, "--key", "-k", help="Only this key's changes"),
    output: Format = Output,
) -> None:
    """Who changed what, when and why: every change of a tenant, from the log
    (`-o wide` adds the event and full times).

    Example:  tenantctl config history acme --key rate_limit
    """

    async def go() -> list[Change]:
        async with session(settings_from(ctx)) as s:
            return await config_history(s.log, validate_tenant_id(tenant), key)

    changes = run(go())
    if output is Format.TABLE:
        emit([_narrow(change) for change in changes], output, f"{tenant} history")
    else:
        emit([change.to_dict() for change in changes], output, f"{tenant} history")


def _narrow(change: Change) -> dict[str, Any]:
    """What fits 80 columns: when, who, which key, from what to what, why."""
    old = "-" if change.old is None else orjson.dumps(change.old, default=str).decode()
    new = "-" if change.new is None else orjson.dumps(change.new, default=str).decode()
    return {
        "seq": change.seq, "at": f"{change.at:%m-%d %H:%M}", "actor": change.actor,
        "key": change.key or change.event, "change": f"{old} -> {new}", "reason": change.reason,
    }  # fmt: skip
