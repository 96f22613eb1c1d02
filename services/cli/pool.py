"""`tenantctl pool` and `tenantctl worker`: worker pools, their load, their workers."""

from __future__ import annotations

import importlib
from typing import Any

import orjson
import typer
from nats.errors import NoRespondersError, TimeoutError

from contracts.config import SetConfig
from services.cli.context import connected, default_actor, run, settings_from
from services.cli.options import Output, Reason, Wait, send_and_report
from services.cli.output import Format, emit
from services.runtime.errors import EventLogUnavailable
from services.runtime.logging import configure
from services.runtime.services import serve_process
from services.runtime.settings import Settings
from services.worker.kinds import JobKinds
from services.worker.pool import run_pool

pools = typer.Typer(help="Worker pools: load per pool and tenant; which pool a tenant uses.")
workers = typer.Typer(help="Run worker processes.", no_args_is_help=True)


@pools.command("list")
def list_pools(ctx: typer.Context, output: Format = Output) -> None:
    """Show each pool's capacity, jobs in flight, queued, and waiting per tenant.

    Example:  tenantctl pool list -o json
    """
    emit(run(pool_status(settings_from(ctx))), output, "pools")


async def pool_status(settings: Settings) -> list[dict[str, Any]]:
    """Per pool: capacity, in flight, queued and waiting (from the running scheduler)."""
    async with connected(settings) as (nc, _):
        try:
            msg = await nc.request(settings.subjects.control("scheduler", "status"), b"", timeout=5)
        except (NoRespondersError, TimeoutError) as e:
            raise EventLogUnavailable("no scheduler is running") from e
    rows: list[dict[str, Any]] = orjson.loads(msg.data)
    return rows


@pools.command()
def assign(
    ctx: typer.Context, tenant: str, pool: str,
    reason: str = Reason, wait: bool = Wait, output: Format = Output,
) -> None:  # fmt: skip
    """Put a tenant's future jobs in a pool (sets its `jobs.pool` config key).

    Example:  tenantctl pool assign acme dedicated-acme -r "pays for isolation"
    """
    command = SetConfig(
        tenant_id=tenant, values={"jobs.pool": pool}, actor=default_actor(), reason=reason
    )
    send_and_report(settings_from(ctx), command, wait, output)


@workers.command("run")
def run_worker(
    ctx: typer.Context,
    pool: str = typer.Option("default", "--pool", "-p", help="The pool whose jobs to run"),
    threads: int = typer.Option(4, "--threads", min=1, max=256),
    kinds: str = typer.Option(
        "services.worker.examples:KINDS", "--kinds", help="module:NAME of a JobKinds registry"
    ),
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
