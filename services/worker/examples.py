"""Example job kinds: the pattern for writing tenant jobs (and what `dev up` runs).

`tenantctl worker run --kinds package.module:NAME` loads a `JobKinds` of your own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tenantplane.services.worker.context import JobContext
from tenantplane.services.worker.kinds import JobKinds

KINDS = JobKinds()


@KINDS.job("noop")
def noop(ctx: JobContext) -> None:
    """Does nothing (for measuring the machinery)."""


@KINDS.job("sleep")
def sleep(ctx: JobContext, seconds: float = 1.0, steps: int = 10) -> dict[str, Any]:
    """Sleeps in steps, reporting progress and honouring cancellation between them."""
    for step in range(steps):
        ctx.check_cancelled()
        time.sleep(seconds / steps)
        ctx.progress((step + 1) / steps)
    return {"slept_s": seconds}


@KINDS.job("report.write")
def write_report(ctx: JobContext, directory: str, title: str = "report") -> dict[str, Any]:
    """Writes a report file for the tenant, from the tenant's own config."""
    path = Path(directory) / ctx.tenant_id / f"{title}-{ctx.job_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.progress(0.5, "collected")
    path.write_text(json.dumps({"tenant": ctx.tenant_id, "plan": ctx.config.plan,
                                "config": dict(ctx.config)}, indent=2, default=str))  # fmt: skip
    return {"path": str(path)}


@KINDS.job("sync.http")
def sync_http(ctx: JobContext, url: str, token_key: str | None = None) -> dict[str, Any]:
    """Calls an HTTP endpoint for the tenant (tenant header, optional secret bearer token)."""
    headers = {"X-Tenant-ID": ctx.tenant_id}
    if token_key is not None:
        headers["Authorization"] = f"Bearer {ctx.secrets()[token_key]}"
    response = httpx.post(url, headers=headers, json={"job": ctx.job_id}, timeout=30)
    response.raise_for_status()
    return {"status": response.status_code}
