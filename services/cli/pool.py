"""`tenantctl pool` and `tenantctl worker`: worker pools, their load, their workers."""

from __future__ import annotations

import asyncio
import importlib
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import typer
from nats.errors import NoRespondersError, TimeoutError

from tenantplane.contracts.config import SetConfig
from tenantplane.services.cli.context import connected, default_actor, run, session, settings_from
from tenantplane.services.cli.options import Output, Reason, Wait, send_and_report
from tenantplane.services.cli.output import Format, emit, print_warning
from tenantplane.services.config.reader import ConfigReader
from tenantplane.services.jobs.limits import POOL_KEY
from tenantplane.services.pools.local import LocalPools
from tenantplane.services.pools.reconciler import PoolBackend
from tenantplane.services.pools.service import EXAMPLE_KINDS, reconciler_for, run_reconciler
from tenantplane.services.runtime.connections import connect_redis
from tenantplane.services.runtime.errors import Unavailable
from tenantplane.services.runtime.logging import configure
from tenantplane.services.runtime.services import serve_process
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.scheduler.schedules import read_schedules
from tenantplane.services.worker.kinds import JobKinds
from tenantplane.services.worker.pool import run_pool

pools = typer.Typer(help="Worker pools: load per pool and tenant; which pool a tenant uses.")
workers = typer.Typer(help="Run worker processes.", no_args_is_help=True)


@pools.command("list")
def list_pools(ctx: typer.Context, output: Format = Output) -> None:
    """Show each pool's capacity, jobs in flight, queued and waiting, and the kinds its
    workers run (`-o wide` or `-o json`: jobs waiting per tenant too).

    Example:  tenantctl pool list -o json
    """
    rows = run(pool_status(settings_from(ctx)))
    if output is Format.TABLE:
        rows = [_narrow(row) for row in rows]
    emit(rows, output, "pools")


def _narrow(row: dict[str, Any]) -> dict[str, Any]:
    """What fits 80 columns: the counts, and the kinds as one list ("?": no worker heard)."""
    kinds = row.get("kinds")
    shown = {k: row[k] for k in ("pool", "capacity", "in_flight", "in_queue", "waiting")}
    return {**shown, "kinds": "?" if kinds is None else ", ".join(kinds)}


async def pool_status(settings: Settings) -> list[dict[str, Any]]:
    """Per pool: capacity, in flight, queued and waiting (from the running scheduler)."""
    async with connected(settings) as (nc, _):
        try:
            msg = await nc.request(settings.subjects.scheduler_status(), b"", timeout=5)
        except (NoRespondersError, TimeoutError) as e:
            raise Unavailable("no scheduler is running") from e
    rows: list[dict[str, Any]] = orjson.loads(msg.data)
    return rows


@pools.command()
def assign(
    ctx: typer.Context, tenant: str, pool: str,
    reason: str = Reason, wait: bool = Wait, output: Format = Output,
) -> None:  # fmt: skip
    """Put a tenant's future jobs in a pool (sets its `jobs.pool` config key).

    Warns when the pool's workers do not run a kind the tenant's schedules use.

    Example:  tenantctl pool assign acme dedicated-acme -r "pays for isolation"
    """
    settings = settings_from(ctx)
    command = SetConfig(
        tenant_id=tenant, values={POOL_KEY: pool}, actor=default_actor(), reason=reason
    )
    send_and_report(settings, command, wait, output)
    warning = run(_kinds_warning(settings, tenant, pool))
    if warning:
        print_warning(warning)


async def _kinds_warning(settings: Settings, tenant: str, pool: str) -> str | None:
    """What is wrong with the kinds `pool` runs for `tenant`'s schedules, if anything."""
    async with session(settings) as s:
        schedules = await read_schedules(s.log, settings.subjects.tenant_schedules(tenant))
    used = sorted({sch.definition.kind for sch in schedules if sch.active and sch.definition})
    if not used:
        return None
    try:
        rows = await pool_status(settings)
    except Unavailable:
        return f"no scheduler answers, so the kinds {tenant}'s schedules use were not checked"
    served = next((row.get("kinds") for row in rows if row["pool"] == pool), None)
    if served is None:
        return (
            f"no worker of pool {pool} is running yet: it must run {', '.join(used)} "
            f"(used by {tenant}'s schedules)"
        )
    missing = [kind for kind in used if kind not in served]
    if not missing:
        return None
    return (
        f"pool {pool}'s workers do not run {', '.join(missing)}, which {tenant}'s schedules "
        "use: those jobs will be refused until a worker of the pool runs them"
    )


@workers.command("run")
def run_worker(
    ctx: typer.Context,
    pool: str = typer.Option("default", "--pool", "-p", help="The pool whose jobs to run"),
    threads: int = typer.Option(4, "--threads", min=1, max=256),
    kinds: str = typer.Option(EXAMPLE_KINDS, "--kinds", help="module:NAME of a JobKinds registry"),
) -> None:
    """Run a worker process for one pool (one Deployment per pool on Kubernetes).

    Example:  tenantctl worker run --pool default --threads 8 --kinds myapp.jobs:KINDS
    """
    settings = settings_from(ctx)
    configure(settings.log_level, settings.log_format)
    registry = load_kinds(kinds)

    async def main() -> None:
        await serve_process(
            settings,
            [(f"worker-{pool}", lambda s, stop: run_pool(s, stop, pool, registry, threads))],
        )

    run(main())


def load_kinds(spec: str) -> JobKinds:
    """The `JobKinds` named by `module:NAME`."""
    module_name, _, name = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), name or "KINDS")
    except (ImportError, AttributeError) as e:
        raise typer.BadParameter(f"--kinds {spec}: {e}") from e
    if not isinstance(found, JobKinds):
        raise typer.BadParameter(f"--kinds {spec} is not a JobKinds")
    return found


class Backend(StrEnum):
    """Where dedicated pools run."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"


@pools.command()
def reconcile(
    ctx: typer.Context,
    backend: Backend = typer.Option(Backend.LOCAL, "--backend", "-b"),
    template: Path = typer.Option(
        None, "--template", help="kubernetes: the pool Deployment template (the chart's)"
    ),
    namespace: str = typer.Option(
        None, "--k8s-namespace", help="kubernetes: namespace [default: the pod's own]"
    ),
    interval: float = typer.Option(30.0, "--interval", min=1, help="Seconds between passes"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and change nothing"),
    kinds: str = typer.Option(EXAMPLE_KINDS, "--kinds", help="local: module:NAME of job kinds"),
    output: Format = Output,
) -> None:
    """Keep a worker pool running for every dedicated pool a tenant is assigned to.

    A pool not in TENANTPLANE_POOLS that an active tenant's `jobs.pool` names is a
    dedicated pool: it is created when the first tenant is assigned to it and
    removed when the last one leaves. The chart runs this with the kubernetes
    backend; `tenantctl dev up` runs it with the local one.

    Example:  tenantctl pool reconcile --backend kubernetes --template pool.yaml --dry-run
    """
    settings = settings_from(ctx)
    configure(settings.log_level, settings.log_format)
    if backend is Backend.KUBERNETES:
        if template is None:
            raise typer.BadParameter("--template is required with --backend kubernetes")
        from tenantplane.services.pools.k8s import KubernetesPools, PoolTemplate, current_namespace

        def make() -> PoolBackend:
            return KubernetesPools(PoolTemplate.load(template), namespace or current_namespace())
    else:

        def make() -> PoolBackend:
            return LocalPools(settings, kinds)

    if dry_run:
        emit(run(_plan(settings, make())), output, "plan")
        return

    async def service(s: Settings, stop: asyncio.Event) -> None:
        await run_reconciler(s, stop, make(), interval)

    run(serve_process(settings, [("pools", service)]))


async def _plan(settings: Settings, backend: PoolBackend) -> dict[str, list[str]]:
    redis = connect_redis(settings)
    try:
        reconciler = reconciler_for(settings, ConfigReader(redis, settings.keys), backend)
        return (await reconciler.plan()).summary()
    finally:
        await backend.close()
        await redis.aclose()
