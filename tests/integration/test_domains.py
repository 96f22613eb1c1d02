"""Domain events on real servers: own stream, optimistic concurrency, idempotency, replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

import tenantplane as tp
from tenantplane.contracts.config import SetConfig
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.tenants import OffboardTenant, RegisterTenant
from tenantplane.services.runtime.commands import CommandClient
from tenantplane.services.runtime.consumers import read_raw
from tenantplane.services.runtime.domains import Aggregates, DomainStore
from tenantplane.services.runtime.errors import (
    AggregateBlocked,
    ConcurrencyConflict,
    InvalidRequest,
    TenantNotFound,
)
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.projector import Projector
from tenantplane.services.runtime.settings import Settings
from tenantplane.services.runtime.stores.memory import MemoryOp, MemoryStore
from tenantplane.services.runtime.supervisor import Supervisor
from tests.support.cli import ACTOR, send_and_wait, tenantctl
from tests.support.domains import LEDGER, Credited, Debited, balance

pytestmark = pytest.mark.integration


@pytest.fixture
async def ledger(nc: NATS, settings: Settings) -> AsyncIterator[DomainStore]:
    store = DomainStore(nc.jetstream(), settings.subjects, LEDGER)
    await store.ensure_stream()
    yield store
    await nc.jetstream().delete_stream(store.stream)


async def test_domain_events_go_to_their_own_stream_and_never_reach_the_control_plane(
    ledger: DomainStore,
    client: CommandClient,
    redis: aioredis.Redis,
    settings: Settings,
    event_log: EventLog,
) -> None:
    # Given a tenant, and its ledger events in the domain's stream
    await send_and_wait(
        client, redis, settings, RegisterTenant(tenant_id="acme", display_name="A", **ACTOR)
    )
    control_head = await event_log.head()
    appended = await ledger.append("acme", [Credited(account_id="a1", cents=5)], actor="t")

    # Then they are in the domain's stream, not the control stream
    assert appended[0].subject == settings.subjects.domain_event("ledger", "acme", "account", "a1")
    assert await event_log.head() == control_head
    assert await event_log.head(ledger.stream) == 1
    # And the tenant's control-plane commands, history and read model are untouched
    await send_and_wait(
        client, redis, settings, SetConfig(tenant_id="acme", values={"rate_limit": 2}, **ACTOR)
    )
    history = await asyncio.to_thread(
        tenantctl, settings, "config", "history", "acme", "-o", "json"
    )
    assert history.returncode == 0, history.stderr
    assert all(not row["event"].startswith("ledger.") for row in orjson.loads(history.stdout))
    listed = await asyncio.to_thread(tenantctl, settings, "dlq", "list", "-o", "json")
    assert orjson.loads(listed.stdout) == []


async def test_racing_publishers_on_one_aggregate_exactly_one_wins(ledger: DomainStore) -> None:
    first = await ledger.append("acme", [Credited(account_id="a1", cents=1)], actor="t")
    version = first[-1].seq

    async def publish(i: int) -> bool:
        try:
            await ledger.append(
                "acme", [Debited(account_id="a1", cents=i)], actor=f"w{i}",
                expected_version=version,
            )  # fmt: skip
        except ConcurrencyConflict:
            return False
        return True

    wins = await asyncio.gather(*(publish(i) for i in range(10)))
    assert sum(wins) == 1
    events = [s async for s in ledger.events_of("acme", "account", "a1")]
    assert len(events) == 2


async def test_a_retried_publish_is_stored_once(ledger: DomainStore) -> None:
    events = [Credited(account_id="a1", cents=3), Debited(account_id="a1", cents=1)]
    once = await ledger.append("acme", events, actor="t", idempotency_key="import-7")
    again = await ledger.append("acme", events, actor="t", idempotency_key="import-7")
    assert [a.seq for a in again] == [a.seq for a in once]
    assert all(a.duplicate for a in again)
    assert len([s async for s in ledger.events_of("acme", "account", "a1")]) == 2


async def test_concurrent_read_modify_writes_through_the_aggregate_helper_all_apply(
    ledger: DomainStore,
) -> None:
    # Given two writers each crediting one account 50 times through the aggregate helper
    accounts = Aggregates(ledger, "account", lambda _: 0, balance)

    async def writer(name: str) -> None:
        for i in range(50):
            await accounts.execute(
                "acme", "a1", lambda _: [Credited(account_id="a1", cents=1)],
                actor=name, idempotency_key=f"{name}-{i}",
            )  # fmt: skip

    # When they race
    await asyncio.gather(writer("one"), writer("two"))

    # Then every credit applied once, and a repeated key changes nothing
    loaded = await accounts.load("acme", "a1")
    assert loaded.state == 100
    again = await accounts.execute(
        "acme", "a1", lambda _: [Credited(account_id="a1", cents=1)],
        actor="one", idempotency_key="one-0",
    )  # fmt: skip
    assert again == []
    assert (await accounts.load("acme", "a1")).state == 100


async def test_replay_gives_typed_upcast_events_of_one_tenant(
    ledger: DomainStore, nc: NATS, settings: Settings
) -> None:
    # Given a v1 event written by an old publisher, and events of two tenants
    subject = settings.subjects.domain_event("ledger", "acme", "account", "a1")
    old = Credited(account_id="a1", cents=7)
    await ledger.append("beta", [Credited(account_id="b1", cents=1)], actor="t")
    v1 = orjson.loads(_envelope_json(old, "acme"))
    v1["schema_version"], v1["data"] = 1, {"account_id": "a1", "amount": 7}
    await nc.jetstream().publish(subject, orjson.dumps(v1))
    await ledger.append("acme", [Debited(account_id="a1", cents=2)], actor="t")

    # When acme's events are replayed
    replayed = [s.envelope async for s in ledger.replay("acme")]

    # Then they come typed and at the current version, and only acme's
    assert [type(e.data) for e in replayed] == [Credited, Debited]
    assert replayed[0].data == old
    assert {e.tenant_id for e in replayed} == {"acme"}


async def test_an_event_on_the_wrong_aggregate_blocks_it_and_the_append_refuses_mixes(
    ledger: DomainStore, nc: NATS, settings: Settings
) -> None:
    # Given an event whose envelope names account a2, stored on a1's subject
    subject = settings.subjects.domain_event("ledger", "acme", "account", "a1")
    await nc.jetstream().publish(
        subject, _envelope_json(Credited(account_id="a2", cents=9), "acme")
    )
    accounts = Aggregates(ledger, "account", lambda _: 0, balance)
    with pytest.raises(AggregateBlocked):
        await accounts.load("acme", "a1")
    with pytest.raises(InvalidRequest, match="one aggregate"):
        await ledger.append(
            "acme", [Credited(account_id="a1", cents=1), Credited(account_id="a3", cents=1)],
            actor="t",
        )  # fmt: skip


def _envelope_json(event: Credited, tenant: str) -> bytes:
    return Envelope.wrap(event, tenant_id=tenant, actor="old-publisher").to_json()


class _Balances:
    """Each tenant's account balances, in memory."""

    name = "ledger-balances"

    def __init__(self, settings: Settings) -> None:
        self.subjects = settings.subjects

    def filters(self) -> list[str]:
        return [self.subjects.domain_events("ledger")]

    def apply(self, event: StoredEvent) -> list[MemoryOp]:
        data = event.envelope.data
        assert isinstance(data, Credited | Debited)

        def update(state: dict[str, object]) -> None:
            before = state.get(data.account_id, 0)
            assert isinstance(before, int)
            state[data.account_id] = balance(before, data)

        return [MemoryOp(event.envelope.tenant_id, update)]


def _memory_projector(nc: NATS, settings: Settings) -> Projector[MemoryOp]:
    store = MemoryStore(_Balances.name)
    return Projector(
        _Balances(settings), store, nc, subjects=settings.subjects, registry=LEDGER.registry
    )


async def test_one_tenant_of_a_memory_projection_is_rebuilt_and_the_others_left_alone(
    ledger: DomainStore, nc: NATS, settings: Settings
) -> None:
    # Given a memory projection of two tenants' accounts, caught up
    projector = _memory_projector(nc, settings)
    stop = asyncio.Event()
    supervisor = Supervisor(stop)
    supervisor.start("balances", projector.run)
    try:
        for tenant in ("acme", "beta"):
            await ledger.append(tenant, [Credited(account_id="a1", cents=7)], actor="t")
            await ledger.append(tenant, [Debited(account_id="a1", cents=2)], actor="t")
        await projector.wait_for(await ledger.log.head(ledger.stream))
        store = projector.store
        assert isinstance(store, MemoryStore)
        store.tenants["acme"]["stray"] = store.tenants["beta"]["stray"] = 1

        # When acme alone is rebuilt
        done = await projector.rebuild("acme")

        # Then acme's state is what its events say; beta kept what it had
        assert done.events == 2
        assert store.tenants == {"acme": {"a1": 5}, "beta": {"a1": 5, "stray": 1}}
    finally:
        stop.set()
        await supervisor.wait()


async def test_a_projection_of_a_domain_without_a_stream_yet_is_empty_not_an_error(
    nc: NATS, settings: Settings
) -> None:
    # Given a projection of a domain whose stream does not exist yet
    projector = _memory_projector(nc, settings)

    # When its status is asked for and it is rebuilt, whole and for one tenant
    status = await projector.status()
    whole, one = await projector.rebuild(), await projector.rebuild("acme")

    # Then it is an empty projection at 0
    assert (status["store"], status["checkpoint"], status["lag"]) == ("memory", 0, 0)
    assert (whole.events, one.events, one.checkpoint) == (0, 0, 0)


class ContactAdded(tp.DomainEvent):
    domain: ClassVar[str] = "crm"
    family: ClassVar[str] = "contact"
    aggregate_id_field: ClassVar[str] = "contact_id"
    event_type: ClassVar[str] = "crm.contact_added"
    contact_id: tp.AggregateId
    email: str | tp.SealedValue | None = tp.sealed("the contact's address")


CRM = tp.Domain.of("crm", [ContactAdded])


async def test_sealed_fields_are_ciphertext_in_the_log_and_unreadable_once_shredded(
    service: None, client: CommandClient, redis: aioredis.Redis, settings: Settings, nc: NATS
) -> None:
    for tenant in ("acme", "beta"):
        register = RegisterTenant(tenant_id=tenant, display_name=tenant, **ACTOR)
        await send_and_wait(client, redis, settings, register)

    def crm(**options: float) -> DomainStore:
        keys = tp.DomainKeys(nc, settings.subjects, "crm", actor="crm@test", **options)
        return DomainStore(nc.jetstream(), settings.subjects, CRM, keys=keys)

    store = crm()
    await store.ensure_stream()
    # Given a contact with a sealed address in each of two tenants
    for tenant in ("acme", "beta"):
        added = ContactAdded(contact_id="c1", email=f"{tenant}@example.com")
        await store.append(tenant, [added], actor="crm-api")
    # Then the log holds ciphertext, and the store reads the addresses back
    stream = settings.subjects.domain_stream("crm")
    raw = [m.data async for m in read_raw(nc.jetstream(), stream, ">")]
    assert len(raw) == 2
    assert not any(b"@example.com" in data for data in raw)
    assert await _emails(store) == {"acme": "acme@example.com", "beta": "beta@example.com"}
    # And a store without keys refuses a plaintext sealed field, and reads ciphertext
    keyless = DomainStore(nc.jetstream(), settings.subjects, CRM)
    with pytest.raises(InvalidRequest, match="email must be sealed") as refused:
        await keyless.append("acme", [ContactAdded(contact_id="c2", email="x@y.test")], actor="a")
    assert "x@y.test" not in str(refused.value)
    assert isinstance((await _emails(keyless))["acme"], tp.SealedValue)
    # When acme is offboarded with shredding
    shred = OffboardTenant(tenant_id="acme", shred_secrets=True, **ACTOR)
    await send_and_wait(client, redis, settings, shred)
    # Then acme's address is unreadable for good, beta's intact (a fresh process)
    fresh = crm()
    assert await _emails(fresh) == {"acme": None, "beta": "beta@example.com"}
    # And nothing new of acme can be sealed
    with pytest.raises(TenantNotFound):
        await fresh.append("acme", [ContactAdded(contact_id="c3", email="z@y")], actor="a")


async def _emails(store: DomainStore) -> dict[str, object]:
    """Each tenant's contact address as the store reads it back."""
    found: dict[str, object] = {}
    async for stored in store.replay():
        assert isinstance(stored.envelope.data, ContactAdded)
        found[stored.envelope.tenant_id] = stored.envelope.data.email
    return found
