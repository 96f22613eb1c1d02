"""Cron schedules: their state, their commands, and firing them exactly once.

Any number of scheduler replicas run a `CronFirer`. For each fire time that is
due, a replica first submits the job with the idempotency key
`<schedule>:<fire time>` (the same job, however many replicas or restarts),
then records `ScheduleFired` with that key as message id (stored once). A
crash between the two only means the next run submits the same job again,
which is a no-op.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from croniter import croniter

from tenantplane.contracts import cohorts
from tenantplane.contracts.commands import TenantCommand
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.ids import derived_event_id
from tenantplane.contracts.schedules import (
    DefineSchedule,
    PauseSchedule,
    RemoveSchedule,
    ResumeSchedule,
    ScheduleDefined,
    ScheduleFired,
    SchedulePaused,
    ScheduleRemoved,
    ScheduleResumed,
)
from tenantplane.services.jobs.log import JobLog
from tenantplane.services.runtime.aggregates import AggregateWrites, Change
from tenantplane.services.runtime.errors import InvalidRequest, InvalidTransition, JobNotFound
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.follower import Intake
from tenantplane.services.runtime.supervisor import LoopHandle
from tenantplane.services.runtime.tenants import require_tenant

log = structlog.get_logger(__name__)
MAX_CATCH_UP = 1000


@dataclass(frozen=True)
class Schedule:
    """A schedule as its events made it."""

    tenant_id: str
    schedule_id: str
    definition: ScheduleDefined | None = None
    paused: bool = False
    removed: bool = False
    since: datetime | None = None  # when it was defined or resumed: nothing before fires
    last_fire: datetime | None = None
    last_job: str | None = None

    @property
    def active(self) -> bool:
        """Defined, not paused, not removed."""
        return self.definition is not None and not self.paused and not self.removed

    def offset(self) -> float:
        """A stable stagger in [0, stagger_s): spreads 10,000 tenants' hourly jobs.

        The tenant's point in the schedule's own cohort (contracts/cohorts.py), so each
        schedule spreads its tenants independently of the others and of releases.
        """
        if self.definition is None or not self.definition.stagger_s:
            return 0.0
        place = cohorts.point(self.tenant_id, f"stagger/{self.schedule_id}")
        return place / 100 * self.definition.stagger_s

    def fire_times(self, after: datetime, until: datetime) -> list[datetime]:
        """Fire times t with after < t <= until, in UTC."""
        assert self.definition is not None
        zone = ZoneInfo(self.definition.timezone)
        times = croniter(self.definition.cron, after.astimezone(zone))
        found: list[datetime] = []
        while len(found) <= MAX_CATCH_UP:
            t = times.get_next(datetime).astimezone(UTC)
            if t > until:
                break
            found.append(t)
        return found

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire time after `after` (None when not active)."""
        if not self.active or self.definition is None:
            return None
        zone = ZoneInfo(self.definition.timezone)
        fire: datetime = croniter(self.definition.cron, after.astimezone(zone)).get_next(datetime)
        return fire.astimezone(UTC)

    def due(self, now: datetime, tolerance_s: float) -> list[datetime]:
        """The fire times to fire now, as the catch-up policy says."""
        if not self.active or self.definition is None:
            return []
        definition, offset = self.definition, timedelta(seconds=self.offset())
        start = max(t for t in (self.last_fire, self.since) if t is not None)
        window_start = now - timedelta(seconds=definition.catch_up_window_s) - offset
        due = self.fire_times(max(start, window_start), now - offset)
        late = [t for t in due if (now - offset - t).total_seconds() > tolerance_s]
        on_time = [t for t in due if t not in late]
        if definition.catch_up == "all":
            return due
        if definition.catch_up == "once" and late:
            return [due[-1]]  # after downtime: one firing for everything missed
        return on_time


def evolve(schedule: Schedule, stored: StoredEvent) -> Schedule:
    """The schedule after one of its events."""
    at = stored.envelope.occurred_at
    match stored.envelope.data:
        case ScheduleDefined() as definition:
            since = schedule.since if schedule.active else at
            return replace(
                schedule, definition=definition, paused=False, removed=False, since=since
            )
        case SchedulePaused():
            return replace(schedule, paused=True)
        case ScheduleResumed():
            return replace(schedule, paused=False, since=at)
        case ScheduleRemoved():
            return replace(schedule, removed=True)
        case ScheduleFired(fire_time=t, job_id=job_id):
            if schedule.last_fire is not None and t <= schedule.last_fire:
                return schedule
            return replace(schedule, last_fire=t, last_job=job_id or schedule.last_job)
    return schedule


async def read_schedules(log: EventLog, filter_: str) -> list[Schedule]:
    """The schedules whose events match `filter_`, as their events made them (removed
    ones left out)."""
    found: dict[str, Schedule] = {}
    async for stored in log.read(filter_):
        current = found.get(stored.subject) or Schedule(
            stored.envelope.tenant_id, getattr(stored.envelope.data, "schedule_id", "")
        )
        found[stored.subject] = evolve(current, stored)
    return [schedule for schedule in found.values() if not schedule.removed]


class ScheduleWrites(AggregateWrites[Schedule, TenantCommand]):
    """Executes schedule commands (see `AggregateWrites`)."""

    def key_of(self, command: TenantCommand) -> str:
        return f"{command.tenant_id}/{getattr(command, 'schedule_id', '')}"

    def boundary(self, key: str) -> str:
        tenant, _, schedule_id = key.partition("/")
        return self.log.subjects.schedule(tenant, schedule_id)

    def initial(self, key: str) -> Schedule:
        tenant, _, schedule_id = key.partition("/")
        return Schedule(tenant, schedule_id)

    def evolve(self, state: Schedule, stored: StoredEvent) -> Schedule:
        return evolve(state, stored)

    async def change_for(self, state: Schedule, command: TenantCommand) -> Change | None:
        sid, tenant = state.schedule_id, state.tenant_id
        match command:
            case DefineSchedule():
                await require_tenant(self.log, tenant)
                fields = command.model_dump(include=set(ScheduleDefined.model_fields))
                definition = ScheduleDefined(**fields)
                if state.active and state.definition == definition:
                    return None
                return Change(definition, tenant)
            case PauseSchedule():
                _require(state, active=True, verb="pause")
                return Change(SchedulePaused(schedule_id=sid), tenant)
            case ResumeSchedule():
                if state.definition is None or state.removed or not state.paused:
                    raise InvalidTransition(f"schedule {sid} of {tenant} is not paused")
                return Change(ScheduleResumed(schedule_id=sid), tenant)
            case RemoveSchedule():
                if state.definition is None or state.removed:
                    raise InvalidRequest(f"no schedule {sid} for {tenant}")
                return Change(ScheduleRemoved(schedule_id=sid), tenant)
        raise InvalidRequest(f"the scheduler does not handle {type(command).__name__}")


def _require(state: Schedule, *, active: bool, verb: str) -> None:
    if state.definition is None or state.removed:
        raise InvalidRequest(f"no schedule {state.schedule_id} for {state.tenant_id}")
    if state.active != active:
        raise InvalidTransition(f"cannot {verb} schedule {state.schedule_id}: it is paused")


class CronFirer:
    """Fires every tenant's due schedules; safe to run in any number of replicas."""

    def __init__(self, log: EventLog, *, tick_s: float = 0.25, tolerance_s: float = 2.0) -> None:
        self.log = log
        self.jobs = JobLog(log, actor="cron")
        self.tick_s, self.tolerance_s = tick_s, tolerance_s
        self.schedules: dict[str, Schedule] = {}

    async def run(self, loop: LoopHandle) -> None:
        """Fire due schedules until the loop's stop signal; state is rebuilt each run."""
        self.schedules = {}
        intake = Intake("cron", self.log, [self.log.subjects.all_schedules()], self.apply)
        await intake.start()
        try:
            while not loop.stopping:
                await loop.retrying(intake.fold, "reading schedules")
                if intake.caught_up:
                    await loop.retrying(lambda: self.fire_due(datetime.now(UTC)), "firing")
                await intake.wait(self.tick_s)
        finally:
            await intake.close()

    def apply(self, stored: StoredEvent) -> None:
        """Fold one schedule event."""
        key = stored.subject
        current = self.schedules.get(key) or Schedule(
            stored.envelope.tenant_id, getattr(stored.envelope.data, "schedule_id", "")
        )
        self.schedules[key] = evolve(current, stored)

    async def fire_due(self, now: datetime) -> None:
        """Fire every schedule's due times."""
        for key, schedule in list(self.schedules.items()):
            for fire_time in schedule.due(now, self.tolerance_s):
                await self._fire(key, fire_time)

    async def _fire(self, key: str, fire_time: datetime) -> None:
        schedule = self.schedules[key]
        assert schedule.definition is not None
        definition = schedule.definition
        idempotency = f"{schedule.schedule_id}:{fire_time.isoformat()}"
        skipped = await self._overlap(schedule)
        job_id = None
        if not skipped:
            submitted = await self.jobs.submit(
                schedule.tenant_id, definition.kind, dict(definition.args),
                priority=definition.priority, idempotency_key=idempotency,
                reason=f"schedule {schedule.schedule_id} at {fire_time.isoformat()}",
            )  # fmt: skip
            job_id = submitted.job_id
        fired = ScheduleFired(
            schedule_id=schedule.schedule_id, fire_time=fire_time, job_id=job_id, skipped=skipped
        )
        envelope = Envelope.wrap(
            fired, tenant_id=schedule.tenant_id, actor="cron",
            event_id=derived_event_id(f"{schedule.tenant_id}/{idempotency}", 0),
        )  # fmt: skip
        appended = await self.log.append(envelope)
        self.apply(StoredEvent(appended.seq, key, envelope))

    async def _overlap(self, schedule: Schedule) -> str:
        """Why this firing is skipped under the overlap policy ("" when it is not)."""
        assert schedule.definition is not None
        if schedule.definition.overlap == "allow" or schedule.last_job is None:
            return ""
        with contextlib.suppress(JobNotFound):
            previous = await self.jobs.get(schedule.tenant_id, schedule.last_job)
            if not previous.finished:
                return f"previous job {previous.job_id} is still {previous.status}"
        return ""
