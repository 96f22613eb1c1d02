"""A small domain for tests: ledgers of one tenant, credited and debited."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from tenantplane.contracts.domains import AggregateId, Domain, DomainEvent
from tenantplane.contracts.registry import Upcaster


class _Ledger(DomainEvent):
    domain: ClassVar[str] = "ledger"
    family: ClassVar[str] = "account"
    aggregate_id_field: ClassVar[str] = "account_id"
    account_id: AggregateId


class Credited(_Ledger):
    """Money came in (v2: `cents`; v1 had `amount`)."""

    event_type: ClassVar[str] = "ledger.credited"
    schema_version: ClassVar[int] = 2
    cents: int = Field(ge=0)


class Debited(_Ledger):
    """Money went out."""

    event_type: ClassVar[str] = "ledger.debited"
    cents: int = Field(ge=0)


def _amount_to_cents(data: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in data.items() if k != "amount"}
    return {**rest, "cents": data["amount"]}


LEDGER = Domain.of(
    "ledger", [Credited, Debited], [Upcaster("ledger.credited", 1, _amount_to_cents)]
)


def balance(state: int, event: DomainEvent) -> int:
    """The account's balance after one event."""
    if isinstance(event, Credited):
        return state + event.cents
    if isinstance(event, Debited):
        return state - event.cents
    return state
