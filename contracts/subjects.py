"""NATS subjects and stream names: the only place they are spelled.

Subjects put the tenant second, so "everything of one tenant" and "one kind for
every tenant" are each a single filter:

    <root>.evt.<tenant>.lifecycle       tenant lifecycle (one aggregate per tenant)
    <root>.evt.<tenant>.config          tenant configuration
    <root>.evt.<tenant>.route.<service> a tenant's pin to a version of a service
    <root>.evt._platform.route.<service>  a service's versions, default and rollout
    <root>.evt._platform.rollout.<name> a config rollout: values, percentage, end
    <root>.evt.<tenant>.schedule.<id>   a cron schedule and its firings
    <root>.evt.<tenant>.discard         events of the tenant an operator discarded
    <root>.job.<tenant>.<job id>        one job's lifecycle (jobs stream)
    <root>.dom.<domain>.<tenant>.<aggregate type>.<id>
                                        a domain's events (its own stream)
    <root>.lease.<pool>                 workers' heartbeats renewing their attempts' leases
    <root>.queued.<pool>                "attempts were queued": wakes the pool's idle workers
    <root>.leader.<projection>          which replica runs a projection (leases stream)
    <root>.cmd.<service>.<command>      command request/reply
    <root>.chg.<projection>.<tenant>    "projection applied up to seq N" notifications
    <root>.dlq.<projection>.<tenant>    dead letters of a projection
    <root>.ctl.<projection>.<action>    requests to a running projector (redrive, rebuild, status)
    <root>.ctl._all.<action>            requests every running projector answers (status)
    <root>.ctl.services.status          every running service's status record
    <root>.ctl.scheduler.status         the scheduler's load of every pool
    <root>.secret.<tenant>.<pool>.reveal  a tenant's secrets, sealed to the asking pool's key
    <root>.secret.<tenant>.<domain>.domainkey  a domain's key to a tenant's sealed fields
    <root>.audit.<tenant>.<action>      who revealed which secrets (audit stream)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tenantplane.contracts.domains import DomainEvent, validate_domain_name
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.errors import SubjectMismatch
from tenantplane.contracts.ids import (
    AGGREGATE_ID_PATTERN,
    PLATFORM,
    validate_job_id,
    validate_name,
    validate_scope,
    validate_tenant_id,
)

DEFAULT_ROOT = "tp"
# The tenant token of the change notification a projection sends after a rebuild is
# swapped in: every cached tenant of that projection may have changed.
REBUILT = "_rebuilt"
_AGGREGATE_ID = re.compile(AGGREGATE_ID_PATTERN)


@dataclass(frozen=True)
class Subjects:
    """Builds every subject and stream name of one tenantplane installation.

    `root` namespaces an installation, so several (or several test runs) can
    share one NATS server without seeing each other.
    """

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        validate_name(self.root, "subject root")

    # Streams ---------------------------------------------------------------
    def control_subjects(self) -> list[str]:
        """What the control stream stores: the known families only, so nothing else
        (another service's events, a typo) can enter the control plane's log."""
        families = ("lifecycle", "config", "route.*", "schedule.*", "discard")
        return [*(f"{self.root}.evt.*.{family}" for family in families), self.all_rollouts()]

    @property
    def control_stream(self) -> str:
        """The stream of lifecycle, config, routing and schedule events; kept forever."""
        return f"{self._stream_prefix}_CONTROL"

    @property
    def jobs_stream(self) -> str:
        """The stream of job lifecycle events; limited by age and size."""
        return f"{self._stream_prefix}_JOBS"

    @property
    def dead_letter_stream(self) -> str:
        """The stream of events parked by projectors."""
        return f"{self._stream_prefix}_DLQ"

    @property
    def leader_stream(self) -> str:
        """The stream of leases: which replica runs each projection (in memory, short-lived)."""
        return f"{self._stream_prefix}_LEADERS"

    def leader(self, projection: str) -> str:
        """The lease of one projection."""
        return f"{self.root}.leader.{validate_name(projection, 'projection')}"

    def leaders(self) -> str:
        """Every projection's lease."""
        return f"{self.root}.leader.*"

    def covering(self, filters: Sequence[str]) -> str:
        """One filter over everything `filters` match: the whole stream's subjects.

        A consumer with several filters costs nats-server (2.15) about six times the
        work per message of one with a single filter, so readers of a large share of
        a stream subscribe to this and drop the rest by `matches`.
        """
        first = filters[0]
        if first.startswith(f"{self.root}.dom."):
            return self.domain_events(first.split(".")[2])
        stream = self.stream_for(first)
        return self.all_jobs() if stream == self.jobs_stream else self.all_events()

    def stream_named(self, name: str) -> str:
        """The stream an operator names `control` or `jobs`."""
        streams = {"control": self.control_stream, "jobs": self.jobs_stream}
        if name not in streams:
            raise ValueError(f"no stream {name!r}: use one of {', '.join(streams)}")
        return streams[name]

    def stream_for(self, subject: str) -> str:
        """The stream holding `subject` (or every subject of a filter)."""
        if subject.startswith(f"{self.root}.job."):
            return self.jobs_stream
        if subject.startswith(f"{self.root}.audit."):
            return self.audit_stream
        if subject.startswith(f"{self.root}.dom."):
            return self.domain_stream(subject.split(".")[2])
        return self.control_stream

    def domain_stream(self, domain: str) -> str:
        """The stream of one domain's events."""
        name = validate_domain_name(domain).upper().replace("-", "_")
        return f"{self._stream_prefix}_DOM_{name}"

    @property
    def _stream_prefix(self) -> str:
        return self.root.upper().replace("-", "_")

    # Events ----------------------------------------------------------------
    def all_events(self) -> str:
        """Every control-plane event of every tenant."""
        return f"{self.root}.evt.>"

    def tenant_events(self, tenant_id: str) -> str:
        """Every control-plane event of one tenant."""
        return f"{self.root}.evt.{validate_tenant_id(tenant_id)}.>"

    def lifecycle(self, tenant_id: str) -> str:
        """The lifecycle aggregate of one tenant."""
        return f"{self.root}.evt.{validate_tenant_id(tenant_id)}.lifecycle"

    def config(self, tenant_id: str) -> str:
        """The config aggregate of one tenant."""
        return f"{self.root}.evt.{validate_tenant_id(tenant_id)}.config"

    def tenant_state(self, tenant_id: str) -> str:
        """Lifecycle and config of one tenant: the consistency boundary of tenant commands."""
        return f"{self.root}.evt.{validate_tenant_id(tenant_id)}.*"

    def route(self, scope: str, service: str) -> str:
        """Routing events of one service: its versions and rules (platform scope) or one
        tenant's pin."""
        return f"{self.root}.evt.{validate_scope(scope)}.route.{validate_name(service, 'service')}"

    def routes_of(self, service: str) -> str:
        """Every routing event of one service: the consistency boundary of its commands."""
        return f"{self.root}.evt.*.route.{validate_name(service, 'service')}"

    def all_routes(self) -> str:
        """Every routing event of every service."""
        return f"{self.root}.evt.*.route.*"

    def rollout(self, name: str) -> str:
        """One config rollout (platform scope): its start, percentages and end."""
        return f"{self.root}.evt.{PLATFORM}.rollout.{validate_name(name, 'rollout')}"

    def all_rollouts(self) -> str:
        """Every config rollout."""
        return f"{self.root}.evt.{PLATFORM}.rollout.*"

    def schedule(self, tenant_id: str, schedule_id: str) -> str:
        """One cron schedule of one tenant."""
        return (
            f"{self.root}.evt.{validate_tenant_id(tenant_id)}"
            f".schedule.{validate_name(schedule_id, 'schedule id')}"
        )

    def tenant_schedules(self, tenant_id: str) -> str:
        """Every schedule of one tenant."""
        return f"{self.root}.evt.{validate_tenant_id(tenant_id)}.schedule.*"

    def all_schedules(self) -> str:
        """Every schedule of every tenant."""
        return f"{self.root}.evt.*.schedule.*"

    def discards(self, scope: str) -> str:
        """Void markers of events of one tenant (or of the platform scope)."""
        return f"{self.root}.evt.{validate_scope(scope)}.discard"

    def all_discards(self) -> str:
        """Every void marker."""
        return f"{self.root}.evt.*.discard"

    def job(self, tenant_id: str, job_id: str) -> str:
        """One job's lifecycle (in the jobs stream)."""
        return f"{self.root}.job.{validate_tenant_id(tenant_id)}.{validate_job_id(job_id)}"

    def all_jobs(self) -> str:
        """Every job event of every tenant."""
        return f"{self.root}.job.>"

    def tenant_jobs(self, tenant_id: str) -> str:
        """Every job event of one tenant."""
        return f"{self.root}.job.{validate_tenant_id(tenant_id)}.*"

    def job_leases(self, pool: str) -> str:
        """Heartbeats of one pool's workers (core NATS, not stored); per pool, so NATS
        permissions can keep a pool's workers to their own."""
        return f"{self.root}.lease.{validate_name(pool, 'pool')}"

    def job_queued(self, pool: str) -> str:
        """ "The scheduler queued attempts of this pool" (core NATS, empty, not stored):
        wakes the pool's idle workers, which would otherwise look at their queue only
        when they next poll it."""
        return f"{self.root}.queued.{validate_name(pool, 'pool')}"

    def all_job_queued(self) -> str:
        """Every pool's wake-ups (published by the scheduler)."""
        return f"{self.root}.queued.*"

    def all_job_leases(self) -> str:
        """Heartbeats of every pool's workers (heard by the scheduler)."""
        return f"{self.root}.lease.*"

    def pool_of(self, subject: str) -> str | None:
        """The pool of a heartbeat subject (None for any other subject)."""
        tokens = subject.split(".")
        if len(tokens) == 3 and tokens[0] == self.root and tokens[1] == "lease":
            return tokens[2]
        return None

    def domain_event(
        self, domain: str, tenant_id: str, aggregate_type: str, aggregate_id: str
    ) -> str:
        """One aggregate of a domain."""
        if _AGGREGATE_ID.fullmatch(aggregate_id) is None:
            raise ValueError(f"invalid aggregate id {aggregate_id[:80]!r}")
        return f"{_aggregates(self.root, domain, tenant_id, aggregate_type)}.{aggregate_id}"

    def domain_events(
        self, domain: str, tenant_id: str | None = None, aggregate_type: str | None = None
    ) -> str:
        """A domain's events: all, one tenant's, or one aggregate type's (of a tenant or all)."""
        tenant = "*" if tenant_id is None else validate_tenant_id(tenant_id)
        prefix = f"{self.root}.dom.{validate_domain_name(domain)}"
        if aggregate_type is None:
            return f"{prefix}.>" if tenant_id is None else f"{prefix}.{tenant}.>"
        return f"{prefix}.{tenant}.{validate_domain_name(aggregate_type)}.*"

    def kind(self, family: str) -> str:
        """One family of events (`lifecycle`, `config`) for every tenant."""
        return f"{self.root}.evt.*.{validate_name(family, 'event family')}"

    def for_event(self, envelope: Envelope) -> str:
        """The aggregate subject an event is appended to."""
        data = envelope.data
        if isinstance(data, DomainEvent):
            return self.domain_event(
                data.domain, envelope.tenant_id, data.family, data.aggregate_id
            )
        family = data.family
        if family == "lifecycle":
            return self.lifecycle(envelope.tenant_id)
        if family == "config":
            return self.config(envelope.tenant_id)
        if family == "rollout":
            return self.rollout(getattr(envelope.data, "rollout", ""))
        if family == "route":
            return self.route(envelope.tenant_id, getattr(envelope.data, "service", ""))
        if family == "schedule":
            return self.schedule(envelope.tenant_id, getattr(envelope.data, "schedule_id", ""))
        if family == "job":
            return self.job(envelope.tenant_id, getattr(envelope.data, "job_id", ""))
        if family == "discard":
            return self.discards(envelope.tenant_id)
        raise ValueError(f"no subject for event family {family!r}")

    def check(self, subject: str, envelope: Envelope) -> None:
        """Refuse an event stored on a subject that is not its aggregate's.

        The subject names the tenant and the aggregate; a reader that trusted the
        envelope alone could apply one tenant's event to another (or to the
        wrong aggregate), so the two must agree.

        Raises:
            SubjectMismatch: they disagree.
        """
        data = envelope.data
        shape = _domain_shape(type(data))
        if shape is not None:  # a domain's event: the common case of its replay, inline
            domain, family, id_field, id_checked = shape
            head, _, aggregate_id = subject.rpartition(".")
            try:
                prefix = _aggregates(self.root, domain, envelope.tenant_id, family)
            except ValueError:
                prefix = None  # a bad name: said below
            if (
                head == prefix
                and aggregate_id == getattr(data, id_field)
                and (id_checked or _AGGREGATE_ID.fullmatch(aggregate_id) is not None)
            ):
                return
        try:
            expected = self.for_event(envelope)
        except ValueError as e:
            raise SubjectMismatch(f"no subject for {envelope.type}: {e}") from e
        if expected != subject:
            raise SubjectMismatch(
                f"{envelope.type} of tenant {envelope.tenant_id!r} belongs on {expected}, "
                f"not on {subject}"
            )

    def tenant_of(self, subject: str) -> str | None:
        """The tenant token of an event, change or dead-letter subject."""
        tokens = subject.split(".")
        if len(tokens) >= 4 and tokens[0] == self.root and tokens[1] in ("evt", "job"):
            return tokens[2]
        if len(tokens) >= 4 and tokens[0] == self.root and tokens[1] in ("chg", "dlq"):
            return tokens[3]
        if len(tokens) >= 6 and tokens[0] == self.root and tokens[1] == "dom":
            return tokens[3]
        return None

    # Commands --------------------------------------------------------------
    def command(self, service: str, command: str) -> str:
        """The request/reply subject of one command of one service."""
        return f"{self.root}.cmd.{validate_name(service, 'service')}.{command}"

    def secret_reveal(self, tenant_id: str, pool: str) -> str:
        """Where a pool asks for a tenant's secrets: tenant and pool in the subject, so
        NATS permissions scope who may ask, and the service checks the body agrees."""
        return (
            f"{self.root}.secret.{validate_tenant_id(tenant_id)}"
            f".{validate_name(pool, 'pool')}.reveal"
        )

    def pool_secret_reveals(self, pool: str) -> str:
        """Every reveal subject one pool may ask on."""
        return f"{self.root}.secret.*.{validate_name(pool, 'pool')}.reveal"

    def all_secret_reveals(self) -> str:
        """Every reveal subject (served by the config service)."""
        return f"{self.root}.secret.*.*.reveal"

    def domain_key_request(self, tenant_id: str, domain: str) -> str:
        """Where a domain asks for its key to a tenant's sealed fields (both named in the
        subject, so NATS permissions let a domain ask for its own key only)."""
        return (
            f"{self.root}.secret.{validate_tenant_id(tenant_id)}"
            f".{validate_domain_name(domain)}.domainkey"
        )

    def domain_key_requests(self, domain: str) -> str:
        """Every key request one domain may make."""
        return f"{self.root}.secret.*.{validate_domain_name(domain)}.domainkey"

    def all_domain_key_requests(self) -> str:
        """Every domain key request (served by the config service)."""
        return f"{self.root}.secret.*.*.domainkey"

    @property
    def audit_stream(self) -> str:
        """The stream recording who revealed which tenant's secrets."""
        return f"{self._stream_prefix}_AUDIT"

    def audit(self, tenant_id: str, action: str) -> str:
        """An audit record of one tenant (`reveal`)."""
        return f"{self.root}.audit.{validate_tenant_id(tenant_id)}.{validate_name(action)}"

    def all_audit(self, tenant_id: str | None = None) -> str:
        """Every audit record (of one tenant)."""
        tenant = "*" if tenant_id is None else validate_tenant_id(tenant_id)
        return f"{self.root}.audit.{tenant}.*"

    # Projections -----------------------------------------------------------
    def changes(self, projection: str, tenant_id: str) -> str:
        """Published after a projection commits changes to one tenant."""
        return f"{self.root}.chg.{validate_name(projection, 'projection')}.{tenant_id}"

    def all_changes(self, projection: str) -> str:
        """Every change notification of one projection."""
        return f"{self.root}.chg.{validate_name(projection, 'projection')}.>"

    def control(self, projection: str, action: str) -> str:
        """Requests to a running projector (`redrive`), answered by one replica."""
        return f"{self.root}.ctl.{validate_name(projection, 'projection')}.{action}"

    def control_all(self, action: str) -> str:
        """Requests every running projector answers, one replica of each (`status`).

        `_all` cannot be a projection's name (names start with a letter or digit).
        """
        return f"{self.root}.ctl._all.{validate_name(action, 'action')}"

    def service_status(self) -> str:
        """Where every running service answers with its status record (`tenantctl status`)."""
        return self.control("services", "status")

    def scheduler_status(self) -> str:
        """Where one scheduler replica answers with the load of every pool."""
        return self.control("scheduler", "status")

    def tenant_filter(self, filter_subject: str, tenant_id: str) -> str | None:
        """`filter_subject` narrowed to one tenant's events (None when it has none of them).

        The tenant is at a fixed position: third in `evt` and `job` subjects, fourth
        in a domain's.
        """
        tokens = filter_subject.split(".")
        at = 3 if len(tokens) > 1 and tokens[1] == "dom" else 2
        if len(tokens) <= at or tokens[0] != self.root or tokens[1] not in ("evt", "job", "dom"):
            return None
        token = tokens[at]
        if token == ">":
            tokens[at:] = [validate_tenant_id(tenant_id), ">"]
        elif token == "*":
            tokens[at] = validate_tenant_id(tenant_id)
        elif token != tenant_id:
            return None
        return ".".join(tokens)

    def dead_letter(self, projection: str, tenant_id: str) -> str:
        """Where a projection parks an event of one tenant."""
        return f"{self.root}.dlq.{validate_name(projection, 'projection')}.{tenant_id}"

    def dead_letters(self, projection: str | None = None) -> str:
        """Dead letters of one projection, or of all."""
        name = "*" if projection is None else validate_name(projection, "projection")
        return f"{self.root}.dlq.{name}.>"


def matches(filter_subject: str, subject: str) -> bool:
    """Whether a NATS subject filter (with `*` and `>`) matches a concrete subject."""
    wanted, tokens = filter_subject.split("."), subject.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > i
        if i >= len(tokens) or (token != "*" and token != tokens[i]):
            return False
    return len(tokens) == len(wanted)


# Per event class: None, or a domain event's (domain, aggregate type, id field, whether
# the model's own validation already holds the id to the subject token's rule).
_DomainShape = tuple[str, str, str, bool]
_SHAPES: dict[type, _DomainShape | None] = {}


def _domain_shape(cls: type) -> _DomainShape | None:
    try:
        return _SHAPES[cls]
    except KeyError:
        pass
    shape: _DomainShape | None = None
    if issubclass(cls, DomainEvent):
        field = cls.model_fields[cls.aggregate_id_field]
        checked = field.annotation is str and any(
            getattr(rule, "pattern", None) == AGGREGATE_ID_PATTERN for rule in field.metadata
        )
        shape = (cls.domain, cls.family, cls.aggregate_id_field, checked)
    _SHAPES[cls] = shape
    return shape


@functools.lru_cache(maxsize=65_536)
def _aggregates(root: str, domain: str, tenant_id: str, aggregate_type: str) -> str:
    """The subject prefix of one aggregate type of a tenant, its names validated once
    (cached: every event read back is checked against its subject, `Subjects.check`)."""
    tenant = validate_tenant_id(tenant_id)
    return (
        f"{root}.dom.{validate_domain_name(domain)}.{tenant}.{validate_domain_name(aggregate_type)}"
    )
