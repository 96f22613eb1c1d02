"""Whether a tenant exists, read from the log (for services other than config)."""

from __future__ import annotations

from tenantplane.contracts.tenants import TenantOffboarded
from tenantplane.services.runtime.errors import TenantNotFound
from tenantplane.services.runtime.eventlog import EventLog


async def require_tenant(log: EventLog, tenant_id: str) -> None:
    """Return if the tenant was registered and not offboarded.

    Raises:
        TenantNotFound: otherwise.
    """
    last = await log.last_event(log.subjects.lifecycle(tenant_id))
    if last is None or isinstance(last.envelope.data, TenantOffboarded):
        raise TenantNotFound(f"no tenant {tenant_id}", tenant_id=tenant_id)
