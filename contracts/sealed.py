"""Sealed values: encrypted with a key of one tenant, so destroying that tenant's
data key (crypto-shredding) makes every copy unreadable without rewriting the log."""

from __future__ import annotations

from pydantic import Field

from tenantplane.contracts.envelope import Message


class SealedValue(Message):
    """A value encrypted with a tenant's data key (or a key derived from it)."""

    key_id: str = Field(min_length=1, max_length=64)
    ciphertext: str = Field(min_length=1, max_length=16384)
