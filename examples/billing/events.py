"""Billing's domain: invoices, issued then paid (or voided), per tenant.

Only the billing service appends these; they live in billing's own stream,
`<root>.dom.billing.<tenant>.invoice.<invoice id>`, never in the control plane's.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

import tenantplane as tp


class _InvoiceEvent(tp.DomainEvent):
    domain: ClassVar[str] = "billing"
    family: ClassVar[str] = "invoice"
    aggregate_id_field: ClassVar[str] = "invoice_id"
    invoice_id: tp.AggregateId


class InvoiceIssued(_InvoiceEvent):
    """An invoice was sent to a customer of the tenant."""

    event_type: ClassVar[str] = "billing.invoice_issued"
    customer: str = Field(min_length=1, max_length=200)
    amount_cents: int = Field(gt=0, le=10**12)


class InvoicePaid(_InvoiceEvent):
    """A payment arrived for an invoice."""

    event_type: ClassVar[str] = "billing.invoice_paid"
    amount_cents: int = Field(gt=0, le=10**12)


class InvoiceVoided(_InvoiceEvent):
    """An unpaid invoice was cancelled."""

    event_type: ClassVar[str] = "billing.invoice_voided"


BILLING = tp.Domain.of("billing", [InvoiceIssued, InvoicePaid, InvoiceVoided])
