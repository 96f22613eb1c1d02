"""`tenantctl config rollout`: gray release of config values to a sticky share of tenants."""

from __future__ import annotations

from typing import Any

import typer

from tenantplane.contracts.rollouts import (
    AbortRollout,
    PromoteRollout,
    RolloutCommand,
    SetRolloutPercent,
    StartRollout,
)
from tenantplane.services.cli.context import default_actor, run, session, settings_from
from tenantplane.services.cli.options import assignments
from tenantplane.services.cli.output import Format, emit, emit_record, out, print_warning
from tenantplane.services.config import PROJECTION as CONFIG_PROJECTION
from tenantplane.services.config.rollouts import (
    RolloutState,
    all_rollouts,
    all_tenants,
    status_of,
)
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.errors import InvalidRequest
from tenantplane.services.runtime.readyourwrites import wait_applied
from tenantplane.services.runtime.stores.redis_ops import as_text

app = typer.Typer(
    help="Config rollouts (gray release): a value reaches a growing, sticky share of "
    "tenants first, then is promoted to all or aborted.",
    no_args_is_help=True,
)

Percent = typer.Option(..., "--percent", "-p", min=0, max=100, help="Share of the cohort, 0-100")
Reason = typer.Option(..., "--reason", "-r", help="Why (kept in every tenant's history)")
Wait = typer.Option(
    True, "--wait/--no-wait", help="Return once the read model shows every tenant's change"
)
Output = typer.Option(Format.TABLE, "--output", "-o")
Timeout = typer.Option(
    300.0, "--timeout", min=1, help="Seconds to wait for the service (one event per tenant)"
)
SHOWN = 20


def _reason(reason: str) -> str:
    if not reason.strip():
        raise typer.BadParameter("say why (it is kept in every tenant's history)", param_hint="-r")
    return reason


def _send(
    ctx: typer.Context, command: RolloutCommand, wait: bool, timeout: float, output: Format
) -> None:
    """Send a rollout command, wait until every tenant's change is readable, and report."""
    settings = settings_from(ctx)

    async def go() -> dict[str, Any]:
        async with session(settings) as s:
            client = CommandClient(
                s.nc, settings.subjects, max(timeout, settings.request_timeout_s)
            )
            reply = await client.send(command)
            result = dict(reply.result or {})
            last = result.get("last_seq")
            if wait and last is not None:
                await wait_applied(
                    s.nc, s.redis, settings.subjects, settings.keys, CONFIG_PROJECTION, last,
                    timeout,
                )  # fmt: skip
            return result

    result = run(go())
    if output is Format.JSON:
        emit(result, output)
        return
    out.print(
        f"{command.name} {result['rollout']}: {result['status']} at {result['percent']:g}% "
        f"of cohort {result['cohort']}; {result['changed']} tenant(s) changed now"
    )
    out.print(_counts(result))
    if result["matched"] == 0:
        print_warning(f"no tenant carries the labels {result['match']}: the rollout reaches none")


def _counts(result: dict[str, Any]) -> str:
    return (
        f"selected: {result['active']} active, {result['suspended']} suspended "
        f"({result['offboarded']} offboarded); {result['matched']} tenant(s) carry its labels"
    )


@app.command()
def start(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The rollout's name (lowercase, digits, '-', '_')"),
    pairs: list[str] = typer.Argument(
        ..., metavar="KEY=VALUE...", help="Values: JSON when they parse as JSON, else strings"
    ),
    percent: float = Percent,
    matching: list[str] = typer.Option(
        [],
        "--tenants-matching",
        metavar="LABEL=VALUE",
        help="Only tenants carrying this label (repeat for several: all must match)",
    ),
    cohort: str = typer.Option(
        None,
        "--cohort",
        help="Order tenants by this cohort; a route rollout naming it reaches the same "
        "tenants [default: the rollout's name]",
    ),
    except_explicit: bool = typer.Option(
        False, "--except-explicit", help="A tenant's own value of a key wins over the rollout's"
    ),
    reason: str = Reason,
    wait: bool = Wait,
    timeout: float = Timeout,
    output: Format = Output,
) -> None:
    """Start a rollout: the values reach the first PERCENT of the cohort's tenants.

    Each tenant reached gets one event in its history; its own values stay underneath
    and come back on abort. Refused when a key is a secret, fails the config schema,
    or is held by another active rollout.

    Example:  tenantctl config rollout start new-limits rate_limit=100 --percent 10 -r "CHG-7"
    Example:  tenantctl config rollout start eu-beta features='{"beta": true}' --percent 50 \\
                --tenants-matching region=eu --cohort release-42 -r "release 42"
    """
    command = StartRollout(
        rollout=name, values=assignments(pairs), percent=percent, cohort=cohort,
        match=assignments(matching, str, "LABEL=VALUE"), except_explicit=except_explicit,
        actor=default_actor(), reason=_reason(reason),
    )  # fmt: skip
    _send(ctx, command, wait, timeout, output)


@app.command("set")
def set_percent(
    ctx: typer.Context,
    name: str,
    percent: float = Percent,
    reason: str = Reason,
    wait: bool = Wait,
    timeout: float = Timeout,
    output: Format = Output,
) -> None:
    """Raise a rollout's percentage: it only adds tenants (a lower one is refused).

    Running it at the same percentage again joins tenants registered since.

    Example:  tenantctl config rollout set new-limits --percent 50 -r "no errors at 10%"
    """
    command = SetRolloutPercent(
        rollout=name, percent=percent, actor=default_actor(), reason=_reason(reason)
    )
    _send(ctx, command, wait, timeout, output)


@app.command()
def promote(
    ctx: typer.Context,
    name: str,
    reason: str = Reason,
    wait: bool = Wait,
    timeout: float = Timeout,
    output: Format = Output,
) -> None:
    """Promote a rollout: its values become every matched tenant's own, and it ends.

    Example:  tenantctl config rollout promote new-limits -r "healthy at 50% for a day"
    """
    command = PromoteRollout(rollout=name, actor=default_actor(), reason=_reason(reason))
    _send(ctx, command, wait, timeout, output)


@app.command()
def abort(
    ctx: typer.Context,
    name: str,
    reason: str = Reason,
    wait: bool = Wait,
    timeout: float = Timeout,
    output: Format = Output,
) -> None:
    """Abort a rollout: every tenant is back on its own values, and it ends.

    Example:  tenantctl config rollout abort new-limits -r "error rate up in the 10%"
    """
    command = AbortRollout(rollout=name, actor=default_actor(), reason=_reason(reason))
    _send(ctx, command, wait, timeout, output)


@app.command()
def status(
    ctx: typer.Context,
    name: str,
    all_tenants_shown: bool = typer.Option(
        False, "--all", help=f"List every tenant that sees the values [default: {SHOWN}]"
    ),
    output: Format = Output,
) -> None:
    """Show a rollout: its values, its share, how many tenants see it, which, and who
    started, raised and ended it, when and why.

    Example:  tenantctl config rollout status new-limits
    Example:  tenantctl config rollout status new-limits --all -o json
    """
    settings = settings_from(ctx)

    async def go() -> dict[str, Any]:
        async with session(settings) as s:
            state = (await all_rollouts(s.log)).get(name) or RolloutState(name)
            if not state.started:
                raise InvalidRequest(f"no rollout {name}")
            tenants = await all_tenants(s.log)
            members = await s.redis.smembers(settings.keys.rollout_members(name))
            seeing = sorted(t for t in map(as_text, members) if t in tenants and tenants[t].exists)
            history = [
                {
                    "seq": e.seq,
                    "at": e.envelope.occurred_at.isoformat(timespec="seconds"),
                    "actor": e.envelope.actor,
                    "reason": e.envelope.reason,
                    "event": e.envelope.type,
                }
                async for e in s.log.read(settings.subjects.rollout(name))
            ]
            return {
                **state.describe(),
                **status_of(state, tenants),
                "seeing": seeing,
                "history": history,
            }

    record = run(go())
    seeing: list[str] = record["seeing"]
    record["seeing_count"] = len(seeing)
    if output is Format.JSON:
        emit(record, output)
        return
    shown = seeing if all_tenants_shown else seeing[:SHOWN]
    more = "" if len(shown) == len(seeing) else f" ... (+{len(seeing) - len(shown)}, --all)"
    emit_record(
        {
            "status": record["status"],
            "values": record["values"],
            "percent": f"{record['percent']:g}% of cohort {record['cohort']}",
            "tenants matching": record["match"] or "(all)",
            "except explicit": record["except_explicit"],
            "selected": _counts(record),
            "seeing the values": f"{len(seeing)}: {', '.join(shown)}{more}",
            "history": "\n".join(
                f"{h['seq']} {h['at']} {h['event']} by {h['actor']}: {h['reason']}"
                for h in record["history"]
            ),
        },
        output,
        f"rollout {name}",
    )


@app.command("list")
def list_rollouts(ctx: typer.Context, output: Format = Output) -> None:
    """List every rollout, active and ended.

    Example:  tenantctl config rollout list
    """

    async def go() -> list[dict[str, Any]]:
        async with session(settings_from(ctx)) as s:
            found = await all_rollouts(s.log)
        return [
            {k: v for k, v in r.describe().items() if k != "except_explicit"}
            for r in sorted(found.values(), key=lambda r: r.name)
        ]

    emit(run(go()), output, "config rollouts")
