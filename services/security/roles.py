"""The NATS permissions of every role of an installation.

Each process connects as its role's user; NATS refuses anything its role does
not need. Roles: each service (config, router, scheduler), each worker pool,
the pool reconciler, operators (`tenantctl`), read-only SDK readers, and each
registered domain (which may write only its own stream). Replies go to a
per-user inbox prefix, `_INBOX_<user>`, that only that user may subscribe to,
so nobody can read another client's replies.

This module is pure: it says which subjects each role may publish and
subscribe to; `natsconfig.py` renders that as nats-server configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tenantplane.contracts.subjects import Subjects

# The server's own subjects a role needs to read a stream with ordered consumers and
# direct gets (and to answer flow control), and to write to it.
_READ_API = (
    "$JS.API.STREAM.INFO.{s}",
    "$JS.API.STREAM.MSG.GET.{s}",
    "$JS.API.DIRECT.GET.{s}",
    "$JS.API.DIRECT.GET.{s}.>",
    "$JS.API.CONSUMER.CREATE.{s}",
    "$JS.API.CONSUMER.CREATE.{s}.>",
    "$JS.API.CONSUMER.INFO.{s}.*",
    "$JS.API.CONSUMER.DELETE.{s}.*",
    "$JS.FC.{s}.>",
)
_MANAGE_API = ("$JS.API.STREAM.CREATE.{s}", "$JS.API.STREAM.UPDATE.{s}")
_DELETE_API = ("$JS.API.STREAM.MSG.DELETE.{s}",)


@dataclass(frozen=True)
class Role:
    """One NATS user: what it may publish and subscribe to, and whether it answers requests."""

    name: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responds: bool = False

    @property
    def inbox_prefix(self) -> str:
        """Where replies to this role's requests go (only it may subscribe there)."""
        return f"_INBOX_{self.name}"


@dataclass(frozen=True)
class DomainGrant:
    """A registered domain: its name and the projections its service runs."""

    domain: str
    projections: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> DomainGrant:
        """`DOMAIN[:PROJECTION,...]`, as the CLI takes it."""
        name, _, projections = text.partition(":")
        return cls(name, tuple(p for p in projections.split(",") if p))


@dataclass
class _Grants:
    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)

    def read(self, *streams: str) -> _Grants:
        for stream in streams:
            self.publish += [p.format(s=stream) for p in _READ_API]
        return self

    def manage(self, *streams: str) -> _Grants:
        for stream in streams:
            self.publish += [p.format(s=stream) for p in _MANAGE_API]
        return self

    def role(self, name: str, *, responds: bool = False) -> Role:
        subscribe = [*self.subscribe, f"_INBOX_{name}.>"]
        return Role(name, tuple(dict.fromkeys(self.publish)), tuple(dict.fromkeys(subscribe)),
                    responds)  # fmt: skip


class RoleBook:
    """Every role of one installation (its namespace, pools and domains)."""

    def __init__(
        self, subjects: Subjects, pools: Iterable[str], domains: Sequence[DomainGrant] = ()
    ) -> None:
        self.s = subjects
        self.pools = sorted(pools)
        self.domains = list(domains)

    def roles(self) -> list[Role]:
        """Every role, services first."""
        return [
            self.config(), self.router(), self.scheduler(),
            *(self.pool(p) for p in self.pools),
            self.reconciler(), self.operator(), self.reader(),
            *(self.domain(d) for d in self.domains),
        ]  # fmt: skip

    def _service(self, name: str, projections: Sequence[str]) -> _Grants:
        """What every control-plane service needs: its commands, its projections' changes
        and dead letters, status requests, and the control-plane streams."""
        s = self.s
        grants = _Grants(subscribe=[s.command(name, ">"), s.service_status()])
        for projection in projections:
            grants.publish += [s.all_changes(projection), s.dead_letters(projection)]
            grants.subscribe.append(s.control(projection, ">"))
        if projections:
            grants.subscribe.append(s.control_all("status"))
        streams = (s.control_stream, s.jobs_stream, s.dead_letter_stream, s.leader_stream)
        grants.read(*streams).manage(*streams)
        grants.publish += [p.format(s=s.dead_letter_stream) for p in _DELETE_API]
        # Its projections' leases: one replica of each runs it (leadership.py).
        grants.publish += [s.leader(p) for p in projections]
        grants.publish += [p.format(s=s.leader_stream) for p in _DELETE_API]
        return grants

    def config(self) -> Role:
        """The config service: tenant lifecycle and config, discards, secrets."""
        s, grants = self.s, self._service("config", ["config"])
        grants.publish += [s.kind("lifecycle"), s.kind("config"), s.all_rollouts()]
        grants.publish += [s.all_discards(), s.all_audit()]
        grants.read(s.audit_stream).manage(s.audit_stream)
        grants.subscribe += [s.all_secret_reveals(), s.all_domain_key_requests()]
        return grants.role("config", responds=True)

    def router(self) -> Role:
        """The router service: routing events."""
        s, grants = self.s, self._service("router", ["router"])
        grants.publish.append(s.all_routes())
        return grants.role("router", responds=True)

    def scheduler(self) -> Role:
        """The scheduler: job and schedule events, heartbeats, the config SDK."""
        s = self.s
        grants = self._service("scheduler", ["jobs", "scheduler", "cron"])
        grants.publish += [s.all_jobs(), s.all_schedules(), s.all_job_queued()]
        grants.subscribe += [
            s.control("scheduler", ">"),
            s.all_job_leases(),
            s.all_changes("config"),
        ]
        return grants.role("scheduler", responds=True)

    def pool(self, pool: str) -> Role:
        """One worker pool: its jobs' events, its heartbeats, its tenants' secrets."""
        s = self.s
        grants = _Grants(
            publish=[s.all_jobs(), s.job_leases(pool), s.pool_secret_reveals(pool)],
            subscribe=[s.all_changes("config"), s.service_status(), s.job_queued(pool)],
        ).read(s.jobs_stream, s.control_stream)
        return grants.role(f"pool-{pool}", responds=True)

    def reconciler(self) -> Role:
        """The pool reconciler: reads the config read model's changes and lag."""
        s = self.s
        grants = _Grants(subscribe=[s.all_changes("config"), s.service_status()]).read(
            s.control_stream
        )
        return grants.role("reconciler", responds=True)

    def operator(self) -> Role:
        """Operators (`tenantctl`): every command and control request, every stream read;
        never a tenant's secrets."""
        s = self.s
        streams = [s.control_stream, s.jobs_stream, s.dead_letter_stream, s.audit_stream]
        streams += [s.domain_stream(d.domain) for d in self.domains]
        grants = _Grants(
            publish=[f"{s.root}.cmd.>", f"{s.root}.ctl.>"],
            subscribe=[f"{s.root}.chg.>"],
        ).read(*streams)
        return grants.role("operator")

    def reader(self) -> Role:
        """Read-only SDK readers: change notifications (the values are in Redis)."""
        s = self.s
        grants = _Grants(subscribe=[s.all_changes("config"), s.all_changes("router")])
        return grants.role("reader")

    def domain(self, grant: DomainGrant) -> Role:
        """A domain's service: its own stream only, and its projections' subjects."""
        s, stream = self.s, self.s.domain_stream(grant.domain)
        grants = (
            _Grants(
                publish=[s.domain_events(grant.domain), s.domain_key_requests(grant.domain)],
                subscribe=[s.service_status()],
            )
            .read(stream)
            .manage(stream)
        )
        for projection in grant.projections:
            grants.publish += [s.all_changes(projection), s.dead_letters(projection)]
            grants.subscribe.append(s.control(projection, ">"))
        if grant.projections:
            grants.subscribe.append(s.control_all("status"))
        return grants.role(f"domain-{grant.domain}", responds=True)
