"""`tenantctl projection`: where each read model stands, and rebuilding one.

Every running projector answers on its control subjects (see `Projector`), so
this works for any projection, a service's own domain projections included,
without importing their code. The control plane's Redis projections are also
read (and rebuilt) directly when their service is not running.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import orjson
import typer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from rich.console import Console

from tenantplane.contracts import EVENTS
from tenantplane.contracts.commands import CommandError, ErrorCode
from tenantplane.contracts.keys import Keys
from tenantplane.services.cli.context import Session, connected, run, session, settings_from
from tenantplane.services.cli.output import Format, emit
from tenantplane.services.projections import PROJECTIONS, ProjectionInfo
from tenantplane.services.runtime.errors import CommandFailed, InvalidRequest, error_from_reply
from tenantplane.services.runtime.partitions import Partition
from tenantplane.services.runtime.rebuild import RedisRebuild, RunPartition
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.redis import RedisStore

app = typer.Typer(help="Projections (read models): status, lag, dead letters, rebuilds.")
WAIT = typer.Option(0.5, "--wait", help="Seconds to wait for running projectors to answer")


@app.command()
def status(
    ctx: typer.Context,
    wait: float = WAIT,
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:
    """Show each projection's store, checkpoint, lag, parked events and blocked subjects.

    Every running projector answers, a service's own projections included; the
    control plane's are read from Redis when their service is not running.
    Lag is the number of events the projection has still to apply.

    Example:  tenantctl projection status -o json
    """
    emit(run(projection_status(settings_from(ctx), wait)), output, "projections")


async def projection_status(settings: Settings, wait: float = 0.5) -> list[dict[str, Any]]:
    """Status of every running projection, and of each built-in one that is not running."""
    async with session(settings) as s:
        running = {r["projection"]: r for r in await gather_status(s.nc, settings, wait)}
        for info in PROJECTIONS.values():
            if info.name not in running:
                running[info.name] = await _stored_status(s, settings, info)
    return sorted(running.values(), key=lambda r: str(r["projection"]))


async def gather_status(nc: NATS, settings: Settings, wait: float) -> list[dict[str, Any]]:
    """The answers of the running projectors (one replica each) within `wait` seconds."""
    replies: list[dict[str, Any]] = []

    async def on_reply(msg: Msg) -> None:
        reply = orjson.loads(msg.data)
        ok = reply.pop("ok", False)
        replies.append(reply if ok else {**reply, "error": reply.get("error")})

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(settings.subjects.control_all("status"), b"{}", reply=inbox)
        await asyncio.sleep(wait)
    finally:
        await sub.unsubscribe()
    return [{**r, "running": True} for r in replies]


async def _stored_status(s: Session, settings: Settings, info: ProjectionInfo) -> dict[str, Any]:
    position = await RedisStore(s.redis, settings.keys, info.name).load()
    filters = info.filters(settings.subjects)
    exists = await s.log.stream_exists(settings.subjects.stream_for(filters[0]))
    return {
        "projection": info.name,
        "store": "redis",
        "checkpoint": position.checkpoint,
        "lag": await s.log.pending(filters, position.checkpoint) if exists else 0,
        "parked": position.parked,
        "blocked_subjects": len(position.blocked),
        "running": False,
    }


@app.command()
def rebuild(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Projection to rebuild (see `projection status`)"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Rebuild this tenant only"),
    partitions: int = typer.Option(
        1,
        "--partitions",
        "-p",
        min=1,
        max=64,
        help="Replay in this many tenant partitions, each in a process of its own (config)",
    ),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds to wait for the result"),
    output: Format = typer.Option(Format.TABLE, "--output", "-o"),
) -> None:
    """Rebuild a read model (or one tenant's part of it) from the log, without downtime.

    The running projector does it. A Redis read model with a blue/green rebuild
    (the control plane's, billing's balances) is replayed beside the live one
    and switched in atomically once caught up. Otherwise, and for one tenant,
    the projector replays the events (of the tenant) up to its checkpoint and
    replaces that part of the read model in one commit, pausing its live
    applies meanwhile; other tenants are not touched. The control plane's
    projections can be rebuilt whole even when their service is not running.

    With --partitions N, tenantctl itself replays the log up to now in N
    processes, each for the tenants of one partition (a stable hash of the
    tenant id), into the same shadow, then swaps it in as above: on N cores, N
    times the replay's pace, and the same read model.

    Example:  tenantctl projection rebuild config
    Example:  tenantctl projection rebuild billing-balance --tenant acme
    Example:  tenantctl projection rebuild config --partitions 4
    """
    settings = settings_from(ctx)
    if partitions > 1:
        if tenant is not None or name not in PROJECTIONS:
            raise typer.BadParameter(
                f"--partitions rebuilds a whole projection of {', '.join(PROJECTIONS)}"
            )
        result = run(_rebuild_stopped(settings, PROJECTIONS[name], partitions))
    else:
        result = run(_rebuild(settings, name, tenant, timeout))
    emit(result, output, f"rebuilt {name}" + (f" for {tenant}" if tenant else ""))


async def _rebuild(
    settings: Settings, name: str, tenant: str | None, timeout: float
) -> dict[str, Any]:
    async with connected(settings) as (nc, _):
        reply = await _ask_rebuild(nc, settings, name, tenant, timeout)
        if reply is None and (tenant is not None or name not in PROJECTIONS):
            known = sorted({r["projection"] for r in await gather_status(nc, settings, 0.5)})
            raise InvalidRequest(
                f"no running projector answers for {name!r}; running: {', '.join(known) or 'none'}"
            )
    if reply is None:
        return await _rebuild_stopped(settings, PROJECTIONS[name])
    return reply


@app.command("rebuild-part", hidden=True)
def rebuild_part(
    ctx: typer.Context, name: str, index: int, count: int, until: int, root: str
) -> None:
    """One partition of `projection rebuild --partitions` (which runs it in a process)."""

    async def go() -> None:
        settings = settings_from(ctx)
        async with session(settings) as s:
            rebuild = _rebuilder(settings, s, PROJECTIONS[name])
            await rebuild.replay_partition(Partition(index, count), until, Keys(root))

    run(go())


def _in_processes(settings: Settings, name: str) -> RunPartition:
    """Runs each partition of a rebuild as `tenantctl projection rebuild-part`."""

    async def run_partition(partition: Partition, until: int, keys: Keys) -> None:
        args = [str(partition.index), str(partition.count), str(until), keys.root]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tenantplane.services.cli", "projection", "rebuild-part",
            name, *args, env={**os.environ, **settings.to_env()},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, said = await process.communicate()
        if process.returncode != 0:
            tail = said.decode(errors="replace").strip()[-800:]
            raise CommandFailed(f"partition {partition} of the rebuild of {name} failed: {tail}")

    return run_partition


def _rebuilder(settings: Settings, s: Session, info: ProjectionInfo) -> RedisRebuild:
    return RedisRebuild(info.maker(settings.subjects), s.nc, s.redis, s.log, settings.keys, EVENTS)


async def _ask_rebuild(
    nc: NATS, settings: Settings, name: str, tenant: str | None, timeout: float
) -> dict[str, Any] | None:
    """The running projector's result, or None when none runs."""
    subject = settings.subjects.control(name, "rebuild")
    with Console(stderr=True).status(f"rebuilding {name}" + (f" for {tenant}" if tenant else "")):
        try:
            msg = await nc.request(subject, orjson.dumps({"tenant": tenant}), timeout=timeout)
        except NoRespondersError:
            return None
        except TimeoutError as e:
            raise CommandFailed(f"{name} did not finish rebuilding within {timeout}s") from e
    reply: dict[str, Any] = orjson.loads(msg.data)
    if not reply.pop("ok", False):
        code = ErrorCode(reply.get("code", ErrorCode.INTERNAL.value))
        message = f"rebuild of {name} failed: {reply.get('error')}"
        raise error_from_reply(CommandError(code=code, message=message))
    return reply


async def _rebuild_stopped(
    settings: Settings, info: ProjectionInfo, partitions: int = 1
) -> dict[str, Any]:
    """Rebuild a control-plane projection from here (its service is not running, or
    the replay is split into processes)."""
    async with session(settings) as s:
        rebuild = _rebuilder(settings, s, info)
        run_partition = _in_processes(settings, info.name) if partitions > 1 else None
        split = f" in {partitions} partitions" if partitions > 1 else ""
        with Console(stderr=True).status(f"replaying {info.name}{split}"):
            result = await rebuild.run(partitions=partitions, run_partition=run_partition)
    return {
        "projection": info.name,
        "tenant": None,
        "events": result.events,
        "checkpoint": result.events,
        "how": f"built beside{split}, swapped in ({result.keys} keys), by tenantctl",
        "seconds": round(result.seconds, 2),
    }
