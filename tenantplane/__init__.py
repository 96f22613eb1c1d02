"""tenantplane's public SDK: everything a service uses, from one import.

    import tenantplane as tp

    BILLING = tp.Domain.of("billing", [InvoiceIssued, InvoicePaid])
    store = tp.DomainStore(nc.jetstream(), tp.Subjects(), BILLING)
    await store.append("acme", [InvoiceIssued(invoice_id="inv-1", amount_cents=900)],
                       actor="billing", expected_version=0)

Names are loaded on first use, so importing the client side (publishing,
replaying, config reads, route resolution, job submission) loads no server
code; running a projection loads the projector kernel only then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from contracts.domains import AggregateId, Domain, DomainEvent
    from contracts.envelope import Envelope, Event
    from contracts.keys import Keys
    from contracts.registry import EventRegistry, Upcaster
    from contracts.subjects import Subjects
    from services.config.sdk import AsyncConfigClient, ConfigClient, TenantConfig
    from services.router.sdk import Resolver
    from services.runtime.connections import connect_nats, connect_redis
    from services.runtime.domains import Aggregates, DomainStore, Loaded, StreamLimits
    from services.runtime.errors import (
        AggregateBlocked,
        ConcurrencyConflict,
        EventLogUnavailable,
        InvalidRequest,
        TenantNotFound,
        TenantplaneError,
        TenantSuspended,
    )
    from services.runtime.eventlog import Appended, StoredEvent
    from services.runtime.projector import Projection, Projector
    from services.runtime.rebuild import RedisRebuild
    from services.runtime.settings import Settings
    from services.runtime.stores.redis import (
        RedisOp,
        RedisStore,
        as_text,
        delete,
        hdel,
        hset,
        sadd,
        srem,
    )
    from services.runtime.stores.sql import SqlStore
    from services.runtime.supervisor import LoopHandle, Supervisor
    from services.scheduler.client import JobClient

_EXPORTS: dict[str, str] = {
    # Declaring events
    "AggregateId": "contracts.domains",
    "Domain": "contracts.domains",
    "DomainEvent": "contracts.domains",
    "Envelope": "contracts.envelope",
    "Event": "contracts.envelope",
    "EventRegistry": "contracts.registry",
    "Upcaster": "contracts.registry",
    "Keys": "contracts.keys",
    "Subjects": "contracts.subjects",
    # Connecting
    "Settings": "services.runtime.settings",
    "connect_nats": "services.runtime.connections",
    "connect_redis": "services.runtime.connections",
    # Publishing and replaying
    "Aggregates": "services.runtime.domains",
    "Appended": "services.runtime.eventlog",
    "DomainStore": "services.runtime.domains",
    "Loaded": "services.runtime.domains",
    "StoredEvent": "services.runtime.eventlog",
    "StreamLimits": "services.runtime.domains",
    # Projecting (loads the projector kernel)
    "LoopHandle": "services.runtime.supervisor",
    "Projection": "services.runtime.projector",
    "Projector": "services.runtime.projector",
    "RedisOp": "services.runtime.stores.redis",
    "RedisRebuild": "services.runtime.rebuild",
    "RedisStore": "services.runtime.stores.redis",
    "as_text": "services.runtime.stores.redis",
    "SqlStore": "services.runtime.stores.sql",
    "Supervisor": "services.runtime.supervisor",
    "delete": "services.runtime.stores.redis",
    "hdel": "services.runtime.stores.redis",
    "hset": "services.runtime.stores.redis",
    "sadd": "services.runtime.stores.redis",
    "srem": "services.runtime.stores.redis",
    # Config, routes and jobs
    "AsyncConfigClient": "services.config.sdk",
    "ConfigClient": "services.config.sdk",
    "JobClient": "services.scheduler.client",
    "Resolver": "services.router.sdk",
    "TenantConfig": "services.config.sdk",
    # Errors
    "AggregateBlocked": "services.runtime.errors",
    "ConcurrencyConflict": "services.runtime.errors",
    "EventLogUnavailable": "services.runtime.errors",
    "InvalidRequest": "services.runtime.errors",
    "TenantNotFound": "services.runtime.errors",
    "TenantSuspended": "services.runtime.errors",
    "TenantplaneError": "services.runtime.errors",
}

__all__ = [
    "AggregateBlocked",
    "AggregateId",
    "Aggregates",
    "Appended",
    "AsyncConfigClient",
    "ConcurrencyConflict",
    "ConfigClient",
    "Domain",
    "DomainEvent",
    "DomainStore",
    "Envelope",
    "Event",
    "EventLogUnavailable",
    "EventRegistry",
    "InvalidRequest",
    "JobClient",
    "Keys",
    "Loaded",
    "LoopHandle",
    "Projection",
    "Projector",
    "RedisOp",
    "RedisRebuild",
    "RedisStore",
    "Resolver",
    "Settings",
    "SqlStore",
    "StoredEvent",
    "StreamLimits",
    "Subjects",
    "Supervisor",
    "TenantConfig",
    "TenantNotFound",
    "TenantSuspended",
    "TenantplaneError",
    "Upcaster",
    "as_text",
    "connect_nats",
    "connect_redis",
    "delete",
    "hdel",
    "hset",
    "sadd",
    "srem",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tenantplane' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
