"""Contracts: envelope round trips, strict decoding, upcasting, subjects."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantplane.contracts import (
    EVENTS,
    DecodeError,
    Envelope,
    Event,
    EventRegistry,
    InvalidEvent,
    InvalidTenantId,
    MalformedMessage,
    Subjects,
    UnknownEventType,
    UnknownSchemaVersion,
    Upcaster,
    validate_tenant_id,
)
from tenantplane.contracts.domains import DomainEvent
from tenantplane.contracts.errors import SubjectMismatch
from tenantplane.contracts.tenants import TenantRegistered
from tests.support.domains import LEDGER, Credited
from tests.support.events import config_set, registered


def test_envelope_round_trips_through_the_wire() -> None:
    # Given an event in an envelope
    original = config_set("acme", reason="tune", rate_limit=50, beta=True)
    # When it is encoded and decoded
    decoded = EVENTS.decode(original.to_json())
    # Then it is equal, with typed data
    assert decoded == original
    assert decoded.data.values == {"rate_limit": 50, "beta": True}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "bad", ["", "Acme", "a.b", "*", ">", "a b", "../x", "-x", "x-", "a" * 64, "\u0430cme", "a:b"]
)
def test_bad_tenant_ids_are_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(InvalidTenantId, match="lowercase letters, digits and hyphens"):
        validate_tenant_id(bad)


@pytest.mark.parametrize("good", ["a", "acme", "acme-eu-1", "0", "a" * 63])
def test_good_tenant_ids_pass(good: str) -> None:
    assert validate_tenant_id(good) == good


def test_envelope_refuses_unknown_fields() -> None:
    doc = orjson.loads(registered("acme").to_json())
    doc["data"]["surprise"] = 1
    with pytest.raises(InvalidEvent, match="surprise"):
        EVENTS.decode(orjson.dumps(doc))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json", MalformedMessage),
        (b"[1, 2]", MalformedMessage),
        (b'{"type": "tenant.registered", "data": {}}', MalformedMessage),
        (b'{"type": "x.y", "schema_version": 1, "data": {}}', UnknownEventType),
        (b'{"type": "tenant.registered", "schema_version": 9, "data": {}}', UnknownSchemaVersion),
        (b"x" * 300_000, MalformedMessage),
    ],
)
def test_bad_bytes_raise_a_named_decode_error(raw: bytes, error: type[DecodeError]) -> None:
    with pytest.raises(error):
        EVENTS.decode(raw)


def test_bad_tenant_id_in_an_envelope_is_an_invalid_event() -> None:
    doc = orjson.loads(registered("acme").to_json())
    doc["tenant_id"] = "../etc"
    with pytest.raises(InvalidEvent, match="tenant_id"):
        EVENTS.decode(orjson.dumps(doc))


class _RegisteredV2(Event):
    """Version 2 renames `display_name` to `title`."""

    event_type: ClassVar[str] = "tenant.registered"
    schema_version: ClassVar[int] = 2
    family: ClassVar[str] = "lifecycle"
    title: str
    plan: str


def _rename(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data["title"] = data.pop("display_name")
    data.pop("labels", None)
    return data


def test_old_schema_version_is_upcast_on_read() -> None:
    # Given a registry whose tenant.registered is at v2, with an upcaster from v1
    registry = EventRegistry.of([_RegisteredV2], [Upcaster("tenant.registered", 1, _rename)])
    # When an event written at v1 is decoded
    decoded = registry.decode(registered("acme", display_name="Acme Ltd").to_json())
    # Then it arrives as v2
    assert decoded.schema_version == 2
    assert decoded.data == _RegisteredV2(title="Acme Ltd", plan="standard")


def test_a_gap_in_the_upcaster_chain_is_a_decode_error() -> None:
    registry = EventRegistry.of([_RegisteredV2])
    with pytest.raises(UnknownSchemaVersion, match="knows up to 2"):
        registry.decode(registered("acme").to_json())


def test_subjects_put_the_tenant_second() -> None:
    subjects = Subjects("tp")
    assert subjects.config("acme") == "tp.evt.acme.config"
    assert subjects.tenant_events("acme") == "tp.evt.acme.>"
    assert subjects.kind("config") == "tp.evt.*.config"
    assert subjects.for_event(registered("acme")) == "tp.evt.acme.lifecycle"
    assert subjects.tenant_of("tp.evt.acme.config") == "acme"
    with pytest.raises(InvalidTenantId):
        subjects.config("a.>")


class _LooseRef(DomainEvent):
    """A domain event whose id field is a plain string: the subject check holds it to
    the aggregate id rule itself."""

    domain: ClassVar[str] = "ledger"
    family: ClassVar[str] = "account"
    event_type: ClassVar[str] = "ledger.loose"
    aggregate_id_field: ClassVar[str] = "ref"
    ref: str


@pytest.mark.parametrize(
    ("data", "subject", "fits"),
    [
        (Credited(account_id="a-1", cents=5), "tp.dom.ledger.acme.account.a-1", True),
        (Credited(account_id="a-1", cents=5), "tp.dom.ledger.beta.account.a-1", False),
        (Credited(account_id="a-1", cents=5), "tp.dom.ledger.acme.account.a-2", False),
        (Credited(account_id="a-1", cents=5), "tp.dom.ledger.acme.other.a-1", False),
        (Credited(account_id="a-1", cents=5), "tp.dom.ledger.acme.account.x.a-1", False),
        (_LooseRef(ref="a-1"), "tp.dom.ledger.acme.account.a-1", True),
        (_LooseRef(ref="a+1"), "tp.dom.ledger.acme.account.a+1", False),
    ],
)
def test_a_domain_event_fits_only_its_own_aggregates_subject(
    data: DomainEvent, subject: str, fits: bool
) -> None:
    envelope = Envelope.wrap(data, tenant_id="acme", actor="test")
    with contextlib.nullcontext() if fits else pytest.raises(SubjectMismatch):
        Subjects("tp").check(subject, envelope)


def test_a_filter_narrows_to_one_tenant_at_its_fixed_position() -> None:
    s = Subjects("tp")
    assert s.tenant_filter(s.domain_events("billing"), "acme") == "tp.dom.billing.acme.>"
    assert s.tenant_filter(s.kind("config"), "acme") == "tp.evt.acme.config"
    assert s.tenant_filter(s.all_jobs(), "acme") == "tp.job.acme.>"
    assert s.tenant_filter(s.config("beta"), "acme") is None


def test_envelope_type_must_match_its_data() -> None:
    envelope = registered("acme")
    with pytest.raises(ValueError, match="envelope says"):
        Envelope(**{**envelope.__dict__, "type": "tenant.suspended"})


@given(st.binary(max_size=512))
def test_decoding_arbitrary_bytes_only_raises_decode_errors(raw: bytes) -> None:
    # Then anything but a DecodeError fails the test
    with contextlib.suppress(DecodeError):
        EVENTS.decode(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from([*EVENTS.types, "nope"]), "schema_version": st.integers(-1, 3)},
        optional={"data": st.dictionaries(st.text(max_size=12), json_values, max_size=4)},
    )
)
def test_decoding_arbitrary_envelopes_only_raises_decode_errors(doc: dict[str, Any]) -> None:
    # Then anything but a DecodeError fails the test
    with contextlib.suppress(DecodeError):
        EVENTS.decode(json.dumps(doc).encode())


def test_registered_event_exposes_its_fields() -> None:
    assert isinstance(registered("acme").data, TenantRegistered)


@given(
    tenant=st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
    actor=st.text(min_size=1, max_size=40),
    invoice=st.from_regex(r"[A-Za-z0-9_-]{1,30}", fullmatch=True),
    cents=st.integers(min_value=0, max_value=2**53),
)
def test_the_fast_encoding_decodes_to_the_envelope_wrap_builds(
    tenant: str, actor: str, invoice: str, cents: int
) -> None:
    # Given an event, and the fields an envelope around it would have
    event, now = Credited(account_id=invoice, cents=cents), datetime.now(UTC)
    wrapped = Envelope.wrap(event, tenant_id=tenant, actor=actor, event_id="e1", occurred_at=now)
    # When it is encoded the fast way
    fast = Envelope.encode(event, tenant_id=tenant, actor=actor, event_id="e1", occurred_at=now)
    # Then decoding gives the same envelope as the model's own encoding
    assert LEDGER.registry.decode(fast) == LEDGER.registry.decode(wrapped.to_json()) == wrapped
