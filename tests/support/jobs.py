"""Job kinds for tests, onboarding their tenants, and watching jobs' states."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.tenants import RegisterTenant
from tenantplane.services.jobs.aggregate import Job, JobStatus, evolve
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.consumers import follow, to_raw
from tenantplane.services.runtime.eventlog import EventLog
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.worker.context import JobContext
from tenantplane.services.worker.kinds import JobKinds
from tests.support.cli import ACTOR, send_and_wait

KINDS = JobKinds()


@KINDS.job("noop")
def noop(ctx: JobContext) -> None:
    return None


@KINDS.job("echo.config")
def echo_config(ctx: JobContext, key: str) -> dict[str, Any]:
    return {"tenant": ctx.tenant_id, "value": ctx.config.get(key), "secrets": ctx.secrets()}


@KINDS.job("snoop")
def snoop(ctx: JobContext, looking_for: list[str]) -> dict[str, Any]:
    """Walk every object reachable from the context (attributes, slots, closures, bound
    methods, containers) and say what it found: values sought, and the kinds of the
    objects reached."""
    found, kinds = reachable(ctx, set(looking_for))
    return {"found": sorted(found), "kinds": sorted(kinds), "secrets": ctx.secrets()}


def reachable(root: object, sought: set[str], limit: int = 20_000) -> tuple[set[str], set[str]]:
    """(values of `sought` met, qualified type names met) walking from `root`."""
    seen: set[int] = set()
    todo: list[object] = [root]
    found: set[str] = set()
    kinds: set[str] = set()
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        kinds.add(f"{type(obj).__module__}.{type(obj).__qualname__}")
        if isinstance(obj, str | bytes):
            text = obj if isinstance(obj, str) else obj.decode(errors="ignore")
            found |= {s for s in sought if s in text}
            continue
        todo.extend(_children(obj))
    return found, kinds


def _children(obj: object) -> list[object]:
    children: list[object] = []
    if isinstance(obj, dict):
        children += [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set | frozenset):
        children += list(obj)
    mapping = getattr(obj, "__dict__", None)
    if isinstance(mapping, dict):
        children.append(mapping)
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            children.append(getattr(obj, slot))
    for attribute in ("__self__", "__func__", "__wrapped__", "__closure__", "cell_contents"):
        with contextlib.suppress(Exception):
            value = getattr(obj, attribute, None)
            if value is not None:
                children.append(value)
    for name in dir(type(obj)):  # properties and bound methods
        with contextlib.suppress(Exception):
            if callable(getattr(type(obj), name, None)) and not name.startswith("__"):
                children.append(getattr(obj, name))
    return children


@KINDS.job("flaky")
def flaky(ctx: JobContext, fail_times: int) -> dict[str, Any]:
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
    return {"attempt": ctx.attempt}


@KINDS.job("steps")
def steps(ctx: JobContext, count: int, pause_s: float) -> dict[str, Any]:
    """Reports its progress after each of `count` steps."""
    for step in range(1, count + 1):
        time.sleep(pause_s)
        ctx.progress(step / count, f"step {step} of {count}")
    return {"steps": count}


@KINDS.job("slow")
def slow(ctx: JobContext, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.02)


@KINDS.job("nap")
def nap(ctx: JobContext, seconds: float) -> None:
    """Sleeps, checking nothing (costs no reads however many run at once)."""
    time.sleep(seconds)


@KINDS.job("hangs_first")
def hangs_first(ctx: JobContext, seconds: float) -> dict[str, Any]:
    """Sleeps through its first attempt (long enough to kill its worker); later ones return."""
    if ctx.attempt == 1:
        time.sleep(seconds)
    return {"attempt": ctx.attempt}


async def onboard(
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    *tenants: str,
    **config: object,
) -> None:
    """Register tenants (with `config`), waiting until the config read model has them."""
    for tenant in tenants:
        await send_and_wait(
            client, redis, settings, RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR)
        )
        if config:
            await send_and_wait(
                client, redis, settings, SetConfig(tenant_id=tenant, values=config, **ACTOR)
            )


class Tally:
    """Follows the jobs stream: each job's state, its events by type, and when it finished."""

    def __init__(self, event_log: EventLog) -> None:
        self.event_log = event_log
        self.jobs: dict[str, Job] = {}
        self.events: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.finished_at: dict[str, float] = {}
        self._sub: JetStreamContext.PushSubscription | None = None

    async def __aenter__(self) -> Tally:
        subjects = self.event_log.subjects
        self._sub = await follow(self.event_log.js, subjects, [subjects.all_jobs()], self._on)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _on(self, msg: Msg) -> None:
        stored = self.event_log.decode(to_raw(msg, headers=False))
        job = evolve(self.jobs.get(getattr(stored.envelope.data, "job_id", "")), stored)
        self.jobs[job.job_id] = job
        self.events[job.job_id][stored.envelope.type] += 1
        if job.finished and job.job_id not in self.finished_at:
            self.finished_at[job.job_id] = time.monotonic()

    def count(self, *statuses: JobStatus) -> int:
        """How many jobs are in one of `statuses` now."""
        return sum(job.status in statuses for job in self.jobs.values())

    async def wait_finished(self, job_ids: list[str], timeout: float) -> None:
        """Wait until every job of `job_ids` has finished."""
        deadline = time.monotonic() + timeout
        while not all(job_id in self.finished_at for job_id in job_ids):
            if time.monotonic() > deadline:
                left = [j for j in job_ids if j not in self.finished_at]
                states = Counter(self.jobs[j].status.value for j in left if j in self.jobs)
                raise AssertionError(f"{len(left)} jobs unfinished after {timeout}s: {states}")
            await asyncio.sleep(0.05)


async def wait_for_status(
    jobs: JobLog, tenant: str, job_id: str, *statuses: JobStatus, timeout: float = 20
) -> Job:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await jobs.get(tenant, job_id)
        if job.status in statuses:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} is {job.status}, not {statuses}, after {timeout}s")
        await asyncio.sleep(0.05)
