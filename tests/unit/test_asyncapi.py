"""The AsyncAPI document: complete (every command, event and notice), self-contained, and
valid to the official AsyncAPI parser."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from examples.billing.events import BILLING, InvoiceIssued
from tenantplane.contracts import COMMANDS, EVENTS, Command, Envelope, Event, Subjects
from tenantplane.contracts.discards import EventDiscarded
from tenantplane.contracts.ids import PLATFORM
from tenantplane.contracts.jobs import JobStarted
from tenantplane.contracts.routing import TenantPinned, VersionRegistered
from tenantplane.contracts.schedules import ScheduleFired
from tenantplane.contracts.subjects import matches
from tenantplane.contracts.tenants import TenantRegistered
from tenantplane.services.asyncapi import document
from tenantplane.services.asyncapi.spec import Spec
from tenantplane.services.config.schema import ConfigSchema
from tests.support.asyncapi_parser import parser_command

SUBJECTS = Subjects("tp")
SPEC = document(SUBJECTS, "1.2.3", [BILLING])
REPO = Path(__file__).resolve().parents[2]
Json = dict[str, Any]
EVENT_SAMPLES = [
    (TenantRegistered(display_name="Acme", plan="gold"), "acme"),
    (VersionRegistered(service="billing", version="v1", upstream="http://billing"), PLATFORM),
    (TenantPinned(service="billing", version="v1"), "acme"),
    (JobStarted(job_id="j-1", attempt=1, worker="w-1"), "acme"),
    (ScheduleFired(schedule_id="nightly", fire_time=datetime.now(UTC)), "acme"),
    (EventDiscarded(stream="control", seq=7, subject="tp.evt.acme.config"), "acme"),
    (InvoiceIssued(invoice_id="inv-1", customer="c-1", amount_cents=900), "acme"),
]


def _concrete(base: type[Command]) -> Iterator[type[Command]]:
    """The contracts' command classes with a name: a test's own commands, and a service's
    internal ones (services/config/steps.py, never on the wire), are not contracts."""
    for sub in base.__subclasses__():
        if isinstance(getattr(sub, "name", None), str) and sub.__module__.startswith(
            "tenantplane.contracts."
        ):
            yield sub
        yield from _concrete(sub)


def resolve(pointer: str) -> Any:
    """The node a local `$ref` names (through references to references)."""
    assert pointer.startswith("#/"), pointer
    node: Any = SPEC
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return resolve(node["$ref"]) if isinstance(node, dict) and set(node) == {"$ref"} else node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def as_filter(address: str) -> str:
    """A channel address with its parameters as NATS wildcards."""
    return ".".join("*" if t.startswith("{") else t for t in address.split("."))


def channel_at(subject_filter: str) -> tuple[str, Json]:
    """The one channel whose address is `subject_filter`, parameters for wildcards."""
    found = [
        (key, channel)
        for key, channel in SPEC["channels"].items()
        if channel["address"] is not None and as_filter(channel["address"]) == subject_filter
    ]
    assert len(found) == 1, (subject_filter, [key for key, _ in found])
    return found[0]


def listing(message: str) -> list[str]:
    """The channels that list `message`."""
    return [k for k, c in SPEC["channels"].items() if message in c.get("messages", {})]


def test_every_command_class_is_listed_in_the_contracts() -> None:
    # Given every concrete command class (one with a service and a name)
    defined = set(_concrete(Command))
    # Then each is in COMMANDS, which the document, the exporter and the CLI all read
    assert defined == set(COMMANDS), "add the new command to its module's COMMANDS"


@pytest.mark.parametrize("command_cls", COMMANDS, ids=lambda c: f"{c.service}.{c.name}")
def test_every_command_is_received_on_its_subject_and_answered_by_a_reply_object(
    command_cls: type[Command],
) -> None:
    # Given the channel at the subject the command's service subscribes to
    key, channel = channel_at(command_cls.served_on(SUBJECTS))
    # Then it carries the command's exported schema, correlated by its body's correlation_id
    (message_ref,) = channel["messages"].values()
    message = resolve(message_ref["$ref"])
    assert message["payload"]["title"] == f"{command_cls.service}.{command_cls.name}"
    assert resolve(message["correlationId"]["$ref"])["location"] == (
        "$message.payload#/correlation_id"
    )
    # And its service receives it in its queue group and answers with the command reply,
    # on the request's reply subject (known only at run time)
    operation = SPEC["operations"][key]
    assert operation["action"] == "receive"
    assert resolve(operation["channel"]["$ref"]) is channel
    assert operation["bindings"]["nats"]["queue"] == command_cls.service
    (reply_ref,) = operation["reply"]["messages"]
    assert resolve(reply_ref["$ref"])["name"] == "command.reply"
    assert resolve(operation["reply"]["channel"]["$ref"])["address"] is None


def test_secret_subjects_name_their_tenant_and_pool_or_domain_as_parameters() -> None:
    channels = {c["address"]: c for c in SPEC["channels"].values()}
    reveal = channels["tp.secret.{tenant}.{pool}.reveal"]
    assert set(reveal["parameters"]) == {"tenant", "pool"}
    domain_key = channels["tp.secret.{tenant}.{domain}.domainkey"]
    assert set(domain_key["parameters"]) == {"tenant", "domain"}


@pytest.mark.parametrize("event_type", sorted(EVENTS.types))
def test_every_event_type_is_a_message_of_one_family_channel(event_type: str) -> None:
    # Given an event type of the control plane
    message = SPEC["components"]["messages"][event_type]
    # Then its message carries its envelope's schema, correlated by the body's correlation_id
    assert message["payload"]["properties"]["type"]["const"] == event_type
    assert message["correlationId"] == {"$ref": "#/components/correlationIds/event"}
    assert "Nats-Msg-Id" in message["headers"]["required"]
    # And exactly one channel lists it, which the services `send` on
    (key,) = listing(event_type)
    sends = [
        op for op in SPEC["operations"].values() if op["channel"]["$ref"] == f"#/channels/{key}"
    ]
    assert [op["action"] for op in sends] == ["send"]


@pytest.mark.parametrize(
    ("data", "tenant"), EVENT_SAMPLES, ids=lambda v: getattr(v, "event_type", v)
)
def test_an_event_is_appended_on_a_subject_its_channel_matches(data: Event, tenant: str) -> None:
    # Given an event as a service appends it
    subject = SUBJECTS.for_event(Envelope.wrap(data, tenant_id=tenant, actor="test"))
    # Then the channel listing its type has an address matching that subject
    (key,) = listing(data.event_type)
    assert matches(as_filter(SPEC["channels"][key]["address"]), subject)


def test_notices_and_control_subjects_are_channels() -> None:
    # Given the subjects the processes publish and answer beside commands and events
    subjects = [
        SUBJECTS.changes("config", "acme"),
        SUBJECTS.dead_letter("config", "acme"),
        SUBJECTS.job_leases("default"),
        SUBJECTS.audit("acme", "reveal"),
        SUBJECTS.control("config", "redrive"),
        SUBJECTS.control("config", "rebuild"),
        SUBJECTS.control_all("status"),
        SUBJECTS.service_status(),
        SUBJECTS.scheduler_status(),
    ]
    addresses = [c["address"] for c in SPEC["channels"].values() if c["address"] is not None]
    # Then a channel's address matches each
    for subject in subjects:
        assert any(matches(as_filter(a), subject) for a in addresses), subject


def test_every_channel_address_declares_its_parameters_and_has_no_wildcard() -> None:
    for key, channel in SPEC["channels"].items():
        address = channel["address"]
        if address is None:
            continue
        tokens = address.split(".")
        assert "*" not in tokens, key
        assert ">" not in tokens, key
        named = {t[1:-1] for t in tokens if t.startswith("{")}
        assert named == set(channel.get("parameters", {})), key


def test_every_ref_resolves_inside_the_document() -> None:
    found = list(refs(SPEC))
    assert found
    for ref in found:
        resolve(ref)
    assert "$defs" not in json.dumps(SPEC)


def test_replies_are_reply_objects_and_correlation_ids_point_into_payloads() -> None:
    text = json.dumps(SPEC)
    assert "x-reply" not in text
    for key, operation in SPEC["operations"].items():
        if "reply" in operation:
            assert operation["action"] == "receive", key
            assert resolve(operation["reply"]["channel"]["$ref"])["address"] is None
    for message in SPEC["components"]["messages"].values():
        if "correlationId" in message:
            location = resolve(message["correlationId"]["$ref"])["location"]
            field = location.removeprefix("$message.payload#/")
            assert field in message["payload"]["properties"], location


def test_payloads_are_the_exported_schemas_with_the_config_schema_keys() -> None:
    # Given a config schema that types one key
    config = ConfigSchema.model_validate({"keys": {"seats": {"type": "int", "minimum": 1}}})
    spec = document(SUBJECTS, "1.2.3", refined=config.command_schemas())
    # Then config.set's payload says what a config value and that key may be
    values = spec["components"]["messages"]["config.config.set"]["payload"]["properties"]["values"]
    assert values["propertyNames"]["pattern"] == r"^[a-z0-9][a-z0-9_.-]{0,127}$"
    assert values["additionalProperties"] == {"$ref": "#/components/schemas/JsonData"}
    seats = values["properties"]["seats"]["allOf"]
    assert seats[0] == {"$ref": "#/components/schemas/JsonData"}
    assert seats[1]["minimum"] == 1


def test_a_domain_gets_a_channel_per_aggregate_type() -> None:
    _, channel = channel_at("tp.dom.billing.*.invoice.*")
    assert set(channel["messages"]) == set(BILLING.registry.types)
    assert set(channel["parameters"]) == {"tenant", "aggregateId"}


@pytest.mark.timeout(300)  # a fresh clone installs the parser first
def test_the_official_parser_accepts_the_document_tenantctl_writes(tmp_path: Path) -> None:
    # Given the document `tenantctl contracts asyncapi` writes, with a domain registered
    parse = parser_command()
    path = tmp_path / "asyncapi.json"
    written = subprocess.run(
        [sys.executable, "-m", "tenantplane.services.cli", "contracts", "asyncapi", str(path),
         "--domain", "examples.billing.events:BILLING"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    # When the official AsyncAPI parser reads it
    parsed = subprocess.run([*parse, str(path)], capture_output=True, text=True, timeout=60)
    # Then it reports no error
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    assert "valid AsyncAPI 3.0.0" in parsed.stdout


def test_a_definition_unlike_an_earlier_one_of_its_name_goes_under_its_own_name() -> None:
    # Given two exported schemas that each define an `X`, differently
    spec = Spec()
    first = spec.payload({"$defs": {"X": {"type": "string"}}, "$ref": "#/$defs/X"}, "a")
    second = spec.payload(
        {
            "$defs": {"X": {"type": "integer"}},
            "properties": {"x": {"$ref": "#/$defs/X", "description": "an x"}},
        },
        "b",
    )
    # Then the first keeps the name, the second's goes under its namespace
    assert first == {"$ref": "#/components/schemas/X"}
    assert spec.schemas == {"X": {"type": "string"}, "b.X": {"type": "integer"}}
    # And a reference with siblings is wrapped, so a draft-07 reader keeps them
    assert second["properties"]["x"] == {
        "allOf": [{"$ref": "#/components/schemas/b.X"}],
        "description": "an x",
    }


def test_a_keyword_a_draft_07_reader_would_ignore_is_refused() -> None:
    with pytest.raises(ValueError, match="prefixItems"):
        Spec().payload({"type": "array", "prefixItems": [{"type": "string"}]}, "t")
