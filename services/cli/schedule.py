"""`tenantctl schedule`: cron schedules of tenant jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from tenantplane.contracts.schedules import (
    DefineSchedule,
    PauseSchedule,
    RemoveSchedule,
    ResumeSchedule,
)
from tenantplane.services.cli.context import default_actor, run, session, settings_from
from tenantplane.services.cli.options import Output, Reason, assignments, send_and_report
from tenantplane.services.cli.output import Format, emit
from tenantplane.services.scheduler.schedules import Schedule, read_schedules

app = typer.Typer(help="Cron schedules: add, list, pause, resume, rm.")


@app.command()
def add(
    ctx: typer.Context,
    tenant: str,
    schedule_id: str = typer.Argument(..., metavar="ID"),
    cron: str = typer.Option(..., "--cron", "-c", help="5 fields, or 6 with seconds"),
    kind: str = typer.Option(..., "--kind", "-k"),
    arg: list[str] = typer.Option([], "--arg", "-a", help="key=value (JSON values)"),
    timezone: str = typer.Option("UTC", "--tz", help="IANA time zone of the expression"),
    overlap: str = typer.Option("skip", "--overlap", help="skip | allow"),
    catch_up: str = typer.Option("once", "--catch-up", help="skip | once | all (after downtime)"),
    window: float = typer.Option(3600, "--catch-up-window", help="Seconds looked back"),
    stagger: float = typer.Option(0, "--stagger", help="Spread fire times over this many seconds"),
    reason: str = Reason,
    output: Format = Output,
) -> None:
    """Create or change a schedule.

    Example:  tenantctl schedule add acme nightly --cron "0 2 * * *" --tz Europe/Berlin \\
                --kind report.write -a directory=/reports --stagger 600
    """
    args = assignments(arg)
    command = DefineSchedule.model_validate({
        "tenant_id": tenant, "schedule_id": schedule_id, "cron": cron, "timezone": timezone,
        "kind": kind, "args": args, "overlap": overlap, "catch_up": catch_up,
        "catch_up_window_s": window, "stagger_s": stagger, "actor": default_actor(),
        "reason": reason,
    })  # fmt: skip
    send_and_report(settings_from(ctx), command, False, output)


def _simple(
    name: str, command_cls: type[PauseSchedule | ResumeSchedule | RemoveSchedule], doc: str
) -> None:
    def command(
        ctx: typer.Context,
        tenant: str,
        schedule_id: str = typer.Argument(..., metavar="ID"),
        reason: str = Reason,
        output: Format = Output,
    ) -> None:
        sent = command_cls(
            tenant_id=tenant, schedule_id=schedule_id, actor=default_actor(), reason=reason
        )
        send_and_report(settings_from(ctx), sent, False, output)

    command.__doc__ = doc
    app.command(name)(command)


_simple(
    "pause",
    PauseSchedule,
    """Stop a schedule firing.

    Example:  tenantctl schedule pause acme nightly -r "maintenance"
    """,
)
_simple(
    "resume",
    ResumeSchedule,
    """Let a paused schedule fire again (missed times follow
    --catch-up).

    Example:  tenantctl schedule resume acme nightly
    """,
)
_simple(
    "rm",
    RemoveSchedule,
    """Remove a schedule.

    Example:  tenantctl schedule rm acme nightly
    """,
)


@app.command("list")
def list_schedules(
    ctx: typer.Context,
    tenant: str = typer.Option(None, "--tenant", "-t"),
    output: Format = Output,
) -> None:
    """List schedules with their next fire time (`-o wide`: time zone, last fire time).

    Example:  tenantctl schedule list --tenant acme
    """

    async def go() -> list[dict[str, Any]]:
        async with session(settings_from(ctx)) as s:
            subjects = s.settings.subjects
            filter_ = (
                subjects.all_schedules() if tenant is None else subjects.tenant_schedules(tenant)
            )
            return [_row(schedule) for schedule in await read_schedules(s.log, filter_)]

    rows = run(go())
    if output is Format.TABLE:
        rows = [_narrow(row) for row in rows]
    emit(rows, output, "schedules")


def _narrow(row: dict[str, Any]) -> dict[str, Any]:
    """What fits 80 columns: whose, which, when, what it runs, and when next (UTC)."""
    upcoming = row["next_fire"]
    return {
        "tenant": row["tenant"], "id": row["id"], "cron": row["cron"], "kind": row["kind"],
        "status": row["status"], "next": upcoming[5:16].replace("T", " ") if upcoming else "",
    }  # fmt: skip


def _row(schedule: Schedule) -> dict[str, Any]:
    definition = schedule.definition
    assert definition is not None
    upcoming = schedule.next_fire(datetime.now(UTC))
    return {
        "tenant": schedule.tenant_id, "id": schedule.schedule_id, "cron": definition.cron,
        "tz": definition.timezone, "kind": definition.kind,
        "status": "paused" if schedule.paused else "active",
        "last_fire": schedule.last_fire.isoformat() if schedule.last_fire else None,
        "next_fire": upcoming.isoformat() if upcoming else None,
    }  # fmt: skip
