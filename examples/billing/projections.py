"""Billing's read models: balances per tenant in Redis, and a ledger in SQL.

Both are projections run by tenantplane's projector kernel: the checkpoint is
committed with the read model's writes, so each is exactly-once in effect, and
each can be rebuilt from billing's stream at any time.

    <root>:billing:{<tenant>}:balance   hash  issued_cents, paid_cents, invoices, voided
                                        ({<tenant>}: the Redis Cluster hash tag, contracts/keys.py)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Executable, MetaData, String, Table, insert

import tenantplane as tp
from examples.billing.events import InvoiceIssued, InvoicePaid, InvoiceVoided

metadata = MetaData()


def ledger_table(name: str = "billing_ledger") -> Table:
    """One row per money movement (a rebuild can fill a table of another name)."""
    if name in metadata.tables:  # one Table per name, however it is asked for
        return metadata.tables[name]
    return Table(
        name,
        metadata,
        Column("seq", BigInteger, primary_key=True),
        Column("tenant_id", String(63), nullable=False, index=True),
        Column("invoice_id", String(128), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("amount_cents", BigInteger, nullable=False),
    )


def balance_key(keys: tp.Keys, tenant_id: str) -> str:
    """The balance hash of one tenant (billing's keys are spelled only here)."""
    return f"{keys.root}:billing:{{{tenant_id}}}:balance"


@dataclass(frozen=True)
class BalanceProjection:
    """Each tenant's issued, paid and voided totals, in Redis."""

    subjects: tp.Subjects
    keys: tp.Keys
    name: str = "billing-balance"

    def filters(self) -> Sequence[str]:
        """Every billing event."""
        return [self.subjects.domain_events("billing")]

    def owned_patterns(self) -> list[str]:
        """The keys only this projection writes."""
        return [f"{self.keys.root}:billing:*"]

    def tenant_patterns(self, tenant_id: str) -> list[str]:
        """The keys of one tenant (to rebuild that tenant alone)."""
        return [f"{self.keys.root}:billing:{{{tenant_id}}}:*"]

    def apply(self, event: tp.StoredEvent) -> Sequence[tp.RedisOp]:
        """The Redis writes of one event."""
        key = balance_key(self.keys, event.envelope.tenant_id)
        match event.envelope.data:
            case InvoiceIssued(amount_cents=amount):
                return [tp.hincrby(key, "issued_cents", amount), tp.hincrby(key, "invoices", 1)]
            case InvoicePaid(amount_cents=amount):
                return [tp.hincrby(key, "paid_cents", amount)]
            case InvoiceVoided():
                return [tp.hincrby(key, "voided", 1)]
        return []


@dataclass(frozen=True)
class LedgerProjection:
    """Every issue and payment as a ledger row, in SQL."""

    subjects: tp.Subjects
    table: Table
    name: str = "billing-ledger"

    def filters(self) -> Sequence[str]:
        """Every billing event."""
        return [self.subjects.domain_events("billing")]

    def apply(self, event: tp.StoredEvent) -> Sequence[Executable]:
        """The row of one event (voids move no money)."""
        data = event.envelope.data
        if not isinstance(data, InvoiceIssued | InvoicePaid):
            return []
        kind = "issued" if isinstance(data, InvoiceIssued) else "paid"
        row = {
            "seq": event.seq, "tenant_id": event.envelope.tenant_id,
            "invoice_id": data.invoice_id, "kind": kind, "amount_cents": data.amount_cents,
        }  # fmt: skip
        return [insert(self.table).values(**row)]
