"""Builders of test events."""

from __future__ import annotations

from typing import Any

from tenantplane.contracts.config import ConfigValuesSet
from tenantplane.contracts.envelope import Envelope
from tenantplane.contracts.tenants import TenantRegistered


def registered(tenant: str, **fields: Any) -> Envelope:
    data = TenantRegistered(
        display_name=fields.pop("display_name", tenant.title()), plan="standard"
    )
    return Envelope.wrap(data, tenant_id=tenant, actor="test", **fields)


def config_set(tenant: str, reason: str = "", **values: Any) -> Envelope:
    return Envelope.wrap(
        ConfigValuesSet(values=values), tenant_id=tenant, actor="test", reason=reason
    )
