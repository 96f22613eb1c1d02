"""A domain's event store: append with an expected version, read aggregates, replay.

The same kernel as the control plane's (the JetStream log, optimistic
concurrency, idempotency by message id, the read policy for bad events), with
the domain's own stream and registry. See `contracts/domains.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from tenantplane.contracts.domains import Domain, DomainEvent
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.ids import derived_event_id, new_event_id, validate_tenant_id
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.domain_keys import DomainKeys
from tenantplane.services.runtime.errors import ConcurrencyConflict, InvalidRequest
from tenantplane.services.runtime.eventlog import Appended, EventLog, Expected, StoredEvent
from tenantplane.services.runtime.redaction import hiding

S = TypeVar("S")


@dataclass(frozen=True)
class StreamLimits:
    """How long and how much of a domain's stream is kept (0 / -1: no limit)."""

    max_age_s: float = 0.0
    max_bytes: int = -1
    replicas: int = 1
    duplicate_window_s: float = 600.0


class DomainStore:
    """One domain's events in its own stream.

    With `keys`, fields declared `sealed()` are sealed on append and opened on
    read (None where the tenant's key was shredded); without, an append with a
    plaintext sealed field is refused, and reads return the `SealedValue`s.
    """

    def __init__(
        self,
        js: JetStreamContext,
        subjects: Subjects,
        domain: Domain,
        *,
        keys: DomainKeys | None = None,
    ) -> None:
        self.domain = domain
        self.subjects = subjects
        self.log = EventLog(js, subjects, domain.registry)
        self.stream = subjects.domain_stream(domain.name)
        self.keys = keys

    async def ensure_stream(self, limits: StreamLimits | None = None) -> None:
        """Create or update the domain's stream; safe to call from every process at start."""
        limits = limits or StreamLimits()
        await self.log.ensure_stream(
            StreamConfig(
                name=self.stream,
                subjects=[self.subjects.domain_events(self.domain.name)],
                storage=StorageType.FILE,
                num_replicas=limits.replicas,
                duplicate_window=limits.duplicate_window_s,
                max_age=limits.max_age_s,
                max_bytes=limits.max_bytes,
                allow_direct=True,
            )
        )

    async def append(
        self,
        tenant_id: str,
        events: Sequence[DomainEvent],
        *,
        actor: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        reason: str = "",
        correlation_id: str | None = None,
    ) -> list[Appended]:
        """Append events of one aggregate, in order; returns where each was stored.

        With `expected_version` (the sequence of the aggregate's last event, 0 for
        none) the first event is appended only if the aggregate is still there,
        and each next one only right after it. The idempotency key names the
        intent: the same key appends the same event ids, stored once.

        Raises:
            ConcurrencyConflict: the aggregate moved on since `expected_version`.
            InvalidRequest: the events are not of one aggregate of this domain.
        """
        subject = self._subject_of(tenant_id, events)
        # A failure below must not carry a sealed field's value into a log or an error.
        with hiding(v for event in events for v in event.unsealed().values()):
            return await self._append(subject, tenant_id, events, actor, reason, correlation_id,
                                      expected_version, idempotency_key)  # fmt: skip

    async def _append(
        self,
        subject: str,
        tenant_id: str,
        events: Sequence[DomainEvent],
        actor: str,
        reason: str,
        correlation_id: str | None,
        expected: int | None,
        idempotency_key: str | None,
    ) -> list[Appended]:
        events = [await self._sealed(tenant_id, event) for event in events]
        key = idempotency_key or str(uuid.uuid4())
        envelopes = [
            Envelope.wrap(
                event, tenant_id=tenant_id, actor=actor, reason=reason,
                event_id=derived_event_id(f"{subject}/{key}", i),
                correlation_id=correlation_id or key, causation_id=key,
            )
            for i, event in enumerate(events)
        ]  # fmt: skip
        appended: list[Appended] = []
        for envelope in envelopes:  # one by one: the aggregate's order is the call's
            stored = await self.log.append(
                envelope, None if expected is None else Expected(expected)
            )
            appended.append(stored)
            expected = None if expected is None else stored.seq
        return appended

    async def append_many(
        self, batch: Sequence[tuple[str, DomainEvent]], *, actor: str
    ) -> list[Appended]:
        """Append many events of any tenants and aggregates without expectations, many in
        flight: the fast path for imports and high-volume facts.

        Raises:
            InvalidRequest: a tenant id, an aggregate id or the actor is not valid.
        """
        if not 1 <= len(actor) <= 256:
            raise InvalidRequest("actor must be 1-256 characters")
        domain, tenants, now = self.domain.name, set(), datetime.now(UTC)
        messages = []
        for tenant_id, event in batch:
            if tenant_id not in tenants:
                validate_tenant_id(tenant_id)
                tenants.add(tenant_id)
            event = await self._sealed(tenant_id, event)
            subject = self.subjects.domain_event(domain, tenant_id, event.family,
                                                 event.aggregate_id)  # fmt: skip
            event_id = new_event_id()
            payload = Envelope.encode(
                event, tenant_id=tenant_id, actor=actor, event_id=event_id, occurred_at=now
            )
            messages.append((subject, payload, event_id, event.event_type))
        return await self.log.publish_many(messages)

    async def events_of(
        self, tenant_id: str, aggregate_type: str, aggregate_id: str
    ) -> AsyncIterator[StoredEvent]:
        """One aggregate's events, oldest first (discarded ones left out)."""
        subject = self.subjects.domain_event(
            self.domain.name, tenant_id, aggregate_type, aggregate_id
        )
        async for stored in self.log.read_subject(subject):
            yield await self._opened(stored)

    async def replay(
        self,
        tenant_id: str | None = None,
        aggregate_type: str | None = None,
        *,
        start_seq: int = 1,
        start_time: datetime | None = None,
    ) -> AsyncIterator[StoredEvent]:
        """The domain's events as typed, upcast envelopes: all, one tenant's, or one
        aggregate type's, from a sequence or a time, up to the head of the stream."""
        filter_ = self.subjects.domain_events(self.domain.name, tenant_id, aggregate_type)
        async for stored in self.log.read(filter_, start_seq=start_seq, start_time=start_time):
            yield await self._opened(stored)

    async def _sealed(self, tenant_id: str, event: DomainEvent) -> DomainEvent:
        if self.keys is not None:
            return await self.keys.seal_event(tenant_id, event)
        plain = event.unsealed()
        if plain:
            raise InvalidRequest(
                f"{event.event_type}: {', '.join(plain)} must be sealed, and this store "
                "has no keys to seal with (give DomainStore its DomainKeys)"
            )
        return event

    async def _opened(self, stored: StoredEvent) -> StoredEvent:
        data = stored.envelope.data
        if self.keys is None or not isinstance(data, DomainEvent) or not data.sealed_fields():
            return stored
        opened = await self.keys.open_event(stored.envelope.tenant_id, data)
        return stored._replace(envelope=stored.envelope.model_copy(update={"data": opened}))

    def _subject_of(self, tenant_id: str, events: Sequence[DomainEvent]) -> str:
        if not events:
            raise InvalidRequest("nothing to append")
        subjects = set()
        for event in events:
            if event.event_type not in self.domain.registry.types:
                raise InvalidRequest(f"{event.event_type} is not an event of {self.domain.name}")
            subjects.add(
                self.subjects.domain_event(
                    self.domain.name, tenant_id, event.family, event.aggregate_id
                )
            )
        if len(subjects) != 1:
            raise InvalidRequest("one append takes the events of one aggregate")
        return subjects.pop()


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """An aggregate's state at `version` (the sequence of its last event; 0 for none)."""

    state: S
    version: int
    # Idempotency keys of the commands that wrote its events.
    keys: frozenset[str]


class Aggregates(Generic[S]):
    """Load an aggregate by folding its events, decide, append against the version read,
    and decide again on fresh state when another writer came first."""

    def __init__(
        self,
        store: DomainStore,
        aggregate_type: str,
        initial: Callable[[str], S],
        evolve: Callable[[S, DomainEvent], S],
    ) -> None:
        self.store, self.aggregate_type = store, aggregate_type
        self.initial, self.evolve = initial, evolve

    async def load(self, tenant_id: str, aggregate_id: str) -> Loaded[S]:
        """The aggregate as its events made it."""
        state, version, keys = self.initial(aggregate_id), 0, set()
        async for stored in self.store.events_of(tenant_id, self.aggregate_type, aggregate_id):
            data = stored.envelope.data
            assert isinstance(data, DomainEvent)
            state, version = self.evolve(state, data), stored.seq
            if stored.envelope.causation_id is not None:
                keys.add(stored.envelope.causation_id)
        return Loaded(state, version, frozenset(keys))

    async def execute(
        self,
        tenant_id: str,
        aggregate_id: str,
        decide: Callable[[S], Sequence[DomainEvent]],
        *,
        actor: str,
        idempotency_key: str | None = None,
        reason: str = "",
        attempts: int = 20,
    ) -> list[Appended]:
        """Decide on the current state and append; [] when `decide` returns nothing or the
        key was applied before.

        Raises:
            ConcurrencyConflict: other writers kept coming first for `attempts` tries.
            (whatever `decide` raises to refuse)
        """
        key = idempotency_key or str(uuid.uuid4())
        for attempt in range(attempts):
            loaded = await self.load(tenant_id, aggregate_id)
            if key in loaded.keys:
                return []  # applied before (a retry whose first answer was lost)
            events = decide(loaded.state)
            if not events:
                return []
            try:
                return await self.store.append(
                    tenant_id, events, actor=actor, expected_version=loaded.version,
                    idempotency_key=key, reason=reason,
                )  # fmt: skip
            except ConcurrencyConflict:
                await asyncio.sleep(0.001 * min(attempt + 1, 10))
        raise ConcurrencyConflict(
            self.store.subjects.domain_events(self.store.domain.name, tenant_id), -1
        )
