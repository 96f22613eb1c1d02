"""Domains: the event types and aggregate types one service declares and alone writes.

A service's own events (billing's invoices, orders' orders) are not control
plane events: each domain has its own stream, its own retention and its own
permissions, and the control plane's readers never see them. A domain event
names its aggregate in its data, so its subject is built from the event alone:

    <root>.dom.<domain>.<tenant>.<aggregate type>.<aggregate id>

The tenant stands in a fixed position, so "everything of one tenant" is one
filter (`<root>.dom.<domain>.<tenant>.>`), as for the control plane.

    class InvoiceIssued(DomainEvent):
        domain: ClassVar[str] = "billing"
        family: ClassVar[str] = "invoice"          # the aggregate type
        aggregate_id_field: ClassVar[str] = "invoice_id"
        event_type: ClassVar[str] = "billing.invoice_issued"
        invoice_id: AggregateId
        amount_cents: int

    BILLING = Domain.of("billing", [InvoiceIssued, InvoicePaid])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, TypeAdapter, ValidationError

from tenantplane.contracts.envelope import Event
from tenantplane.contracts.ids import AggregateId
from tenantplane.contracts.registry import EventRegistry, Upcaster
from tenantplane.contracts.sealed import SealedValue

__all__ = ["AggregateId", "Domain", "DomainEvent", "SealedValue", "sealed", "validate_domain_name"]

DOMAIN_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
_DOMAIN_NAME = re.compile(DOMAIN_NAME_PATTERN.strip("^$"))
# Names reserved for the control plane's own families.
_RESERVED = frozenset({"tp", "tenantplane", "config", "tenant", "route", "job", "schedule"})


# Each event class's sealed fields, found once (appends ask for every event).
_SEALED_FIELDS: dict[type[DomainEvent], tuple[str, ...]] = {}


def sealed(description: str = "") -> Any:
    """Declare a field of a domain event personal or secret:

        email: str | SealedValue | None = sealed("the customer's address")

    Its value enters the log encrypted with a key derived from the tenant's data
    key (`DomainStore` seals it on append), so offboarding the tenant with
    shredding makes it unreadable in every copy of the log. Read back through a
    store that may open it, it is the value again; where the key is gone, None;
    read by a projector, the `SealedValue` as stored. The type must take
    `SealedValue` and None, and the default is None.
    """
    return Field(default=None, description=description, json_schema_extra={"x-sealed": True})


class DomainEvent(Event):
    """Base of a domain's events: its domain, aggregate type (`family`) and id field."""

    domain: ClassVar[str]
    aggregate_id_field: ClassVar[str]

    def unsealed(self) -> dict[str, Any]:
        """The sealed fields that still hold their plain value (not None, not sealed)."""
        return {
            name: value
            for name in self.sealed_fields()
            if (value := getattr(self, name)) is not None and not isinstance(value, SealedValue)
        }

    @classmethod
    def sealed_fields(cls) -> tuple[str, ...]:
        """The fields declared with `sealed()`."""
        found = _SEALED_FIELDS.get(cls)
        if found is None:
            found = _SEALED_FIELDS[cls] = tuple(
                name
                for name, info in cls.model_fields.items()
                if isinstance(info.json_schema_extra, dict)
                and info.json_schema_extra.get("x-sealed")
            )
        return found

    @property
    def aggregate_id(self) -> str:
        """The id of the aggregate this event belongs to."""
        return str(getattr(self, self.aggregate_id_field))


@dataclass(frozen=True)
class Domain:
    """A named set of event types (with upcasters) whose aggregates one service writes."""

    name: str
    registry: EventRegistry

    @classmethod
    def of(
        cls, name: str, events: Iterable[type[DomainEvent]], upcasters: Iterable[Upcaster] = ()
    ) -> Domain:
        """Declare a domain; refuses events of another domain or without an aggregate id.

        Raises:
            ValueError: the name or an event declaration is not valid.
        """
        validate_domain_name(name)
        listed = list(events)
        for event_cls in listed:
            _check_event(name, event_cls)
        return cls(name, EventRegistry.of(listed, upcasters))

    @property
    def aggregate_types(self) -> frozenset[str]:
        """The aggregate types the domain's events belong to."""
        return frozenset(e.family for e in self.registry.types.values())


def validate_domain_name(name: str) -> str:
    """A domain name: 2-32 lowercase letters, digits and inner hyphens, not reserved."""
    if _DOMAIN_NAME.fullmatch(name) is None or name in _RESERVED:
        raise ValueError(
            f"invalid domain name {name[:40]!r}: use 2-32 lowercase letters, digits and "
            f"hyphens, starting with a letter, and none of {', '.join(sorted(_RESERVED))}"
        )
    return name


def _check_event(domain: str, event_cls: type[DomainEvent]) -> None:
    where = event_cls.__name__
    if getattr(event_cls, "domain", None) != domain:
        raise ValueError(f"{where} is not an event of domain {domain!r}")
    if not event_cls.event_type.startswith(f"{domain}."):
        raise ValueError(f"{where}: its event type must start with '{domain}.'")
    if _DOMAIN_NAME.fullmatch(event_cls.family) is None:
        raise ValueError(f"{where}: invalid aggregate type {event_cls.family!r}")
    field = getattr(event_cls, "aggregate_id_field", None)
    if field not in event_cls.model_fields:
        raise ValueError(f"{where}: aggregate_id_field {field!r} is not one of its fields")
    for name in event_cls.sealed_fields():
        holds: TypeAdapter[Any] = TypeAdapter(event_cls.model_fields[name].annotation or Any)
        try:
            holds.validate_python(None)
            holds.validate_python(SealedValue(key_id="k", ciphertext="c"))
        except ValidationError:
            raise ValueError(
                f"{where}.{name}: a sealed field's type must take SealedValue and None"
            ) from None
