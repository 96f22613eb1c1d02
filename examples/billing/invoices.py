"""The invoice aggregate: its state, how events change it, and what each intent decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import tenantplane as tp
from examples.billing.events import InvoiceIssued, InvoicePaid, InvoiceVoided

Decision = Callable[["Invoice"], list[tp.DomainEvent]]


class InvoiceRefused(tp.InvalidRequest):
    """The intent does not apply to the invoice as it is."""


@dataclass(frozen=True)
class Invoice:
    """One invoice as its events made it."""

    invoice_id: str
    amount_cents: int = 0
    paid_cents: int = 0
    issued: bool = False
    voided: bool = False

    @property
    def due_cents(self) -> int:
        """What is still to be paid."""
        return 0 if self.voided else self.amount_cents - self.paid_cents


def evolve(invoice: Invoice, event: tp.DomainEvent) -> Invoice:
    """The invoice after one event."""
    match event:
        case InvoiceIssued(amount_cents=amount):
            return replace(invoice, amount_cents=amount, issued=True)
        case InvoicePaid(amount_cents=amount):
            return replace(invoice, paid_cents=invoice.paid_cents + amount)
        case InvoiceVoided():
            return replace(invoice, voided=True)
    return invoice


def issue(customer: str, amount_cents: int) -> Decision:
    """Issue the invoice (once)."""

    def decide(invoice: Invoice) -> list[tp.DomainEvent]:
        if invoice.issued:
            raise InvoiceRefused(f"invoice {invoice.invoice_id} was issued already")
        return [InvoiceIssued(invoice_id=invoice.invoice_id, customer=customer,
                              amount_cents=amount_cents)]  # fmt: skip

    return decide


def pay(amount_cents: int) -> Decision:
    """Record a payment of at most what is due."""

    def decide(invoice: Invoice) -> list[tp.DomainEvent]:
        if not invoice.issued or invoice.voided:
            raise InvoiceRefused(f"invoice {invoice.invoice_id} is not open")
        if amount_cents > invoice.due_cents:
            raise InvoiceRefused(
                f"invoice {invoice.invoice_id}: {amount_cents} is more than the "
                f"{invoice.due_cents} due"
            )
        return [InvoicePaid(invoice_id=invoice.invoice_id, amount_cents=amount_cents)]

    return decide


def void() -> Decision:
    """Cancel an invoice nothing was paid on."""

    def decide(invoice: Invoice) -> list[tp.DomainEvent]:
        if not invoice.issued or invoice.voided or invoice.paid_cents:
            raise InvoiceRefused(f"invoice {invoice.invoice_id} cannot be voided")
        return [InvoiceVoided(invoice_id=invoice.invoice_id)]

    return decide


def invoices(store: tp.DomainStore) -> tp.Aggregates[Invoice]:
    """Invoices of the billing domain, loaded by folding their events."""
    return tp.Aggregates(store, "invoice", Invoice, evolve)
