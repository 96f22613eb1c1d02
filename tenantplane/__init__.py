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
    from tenantplane.contracts.domains import AggregateId, Domain, DomainEvent, SealedValue, sealed
    from tenantplane.contracts.envelope import Envelope, Event
    from tenantplane.contracts.keys import Keys
    from tenantplane.contracts.registry import EventRegistry, Upcaster
    from tenantplane.contracts.subjects import Subjects
    from tenantplane.services.config.sdk import AsyncConfigClient, ConfigClient, TenantConfig
    from tenantplane.services.jobs.client import JobClient
    from tenantplane.services.router.propagation import (
        TenantMiddleware,
        current_tenant,
        routed_client,
    )
    from tenantplane.services.router.sdk import Resolver
    from tenantplane.services.runtime.connections import connect_nats, connect_redis
    from tenantplane.services.runtime.domain_keys import DomainKeys
    from tenantplane.services.runtime.domains import Aggregates, DomainStore, Loaded, StreamLimits
    from tenantplane.services.runtime.errors import (
        AggregateBlocked,
        ConcurrencyConflict,
        EventLogUnavailable,
        InvalidRequest,
        TenantNotFound,
        TenantplaneError,
        TenantSuspended,
    )
    from tenantplane.services.runtime.eventlog import Appended, StoredEvent
    from tenantplane.services.runtime.projector import Projection, Projector
    from tenantplane.services.runtime.rebuild import RedisRebuild
    from tenantplane.services.runtime.settings import Settings
    from tenantplane.services.runtime.stores.memory import MemoryOp, MemoryStore
    from tenantplane.services.runtime.stores.redis import RedisStore
    from tenantplane.services.runtime.stores.redis_ops import (
        RedisOp,
        as_text,
        delete,
        hdel,
        hincrby,
        hset,
        sadd,
        srem,
    )
    from tenantplane.services.runtime.stores.sql import SqlStore
    from tenantplane.services.runtime.supervisor import LoopHandle, Supervisor
    from tenantplane.services.worker.context import JobContext
    from tenantplane.services.worker.kinds import JobKinds

_EXPORTS: dict[str, str] = {
    # Declaring events
    "AggregateId": "tenantplane.contracts.domains",
    "Domain": "tenantplane.contracts.domains",
    "DomainEvent": "tenantplane.contracts.domains",
    "SealedValue": "tenantplane.contracts.domains",
    "sealed": "tenantplane.contracts.domains",
    "Envelope": "tenantplane.contracts.envelope",
    "Event": "tenantplane.contracts.envelope",
    "EventRegistry": "tenantplane.contracts.registry",
    "Upcaster": "tenantplane.contracts.registry",
    "Keys": "tenantplane.contracts.keys",
    "Subjects": "tenantplane.contracts.subjects",
    # Connecting
    "Settings": "tenantplane.services.runtime.settings",
    "connect_nats": "tenantplane.services.runtime.connections",
    "connect_redis": "tenantplane.services.runtime.connections",
    # Publishing and replaying
    "Aggregates": "tenantplane.services.runtime.domains",
    "Appended": "tenantplane.services.runtime.eventlog",
    "DomainKeys": "tenantplane.services.runtime.domain_keys",
    "DomainStore": "tenantplane.services.runtime.domains",
    "Loaded": "tenantplane.services.runtime.domains",
    "StoredEvent": "tenantplane.services.runtime.eventlog",
    "StreamLimits": "tenantplane.services.runtime.domains",
    # Projecting (loads the projector kernel)
    "LoopHandle": "tenantplane.services.runtime.supervisor",
    "Projection": "tenantplane.services.runtime.projector",
    "Projector": "tenantplane.services.runtime.projector",
    "MemoryOp": "tenantplane.services.runtime.stores.memory",
    "MemoryStore": "tenantplane.services.runtime.stores.memory",
    "RedisOp": "tenantplane.services.runtime.stores.redis_ops",
    "RedisRebuild": "tenantplane.services.runtime.rebuild",
    "RedisStore": "tenantplane.services.runtime.stores.redis",
    "as_text": "tenantplane.services.runtime.stores.redis_ops",
    "SqlStore": "tenantplane.services.runtime.stores.sql",
    "Supervisor": "tenantplane.services.runtime.supervisor",
    "delete": "tenantplane.services.runtime.stores.redis_ops",
    "hdel": "tenantplane.services.runtime.stores.redis_ops",
    "hincrby": "tenantplane.services.runtime.stores.redis_ops",
    "hset": "tenantplane.services.runtime.stores.redis_ops",
    "sadd": "tenantplane.services.runtime.stores.redis_ops",
    "srem": "tenantplane.services.runtime.stores.redis_ops",
    # Config, routes and jobs
    "AsyncConfigClient": "tenantplane.services.config.sdk",
    "ConfigClient": "tenantplane.services.config.sdk",
    "JobClient": "tenantplane.services.jobs.client",
    "Resolver": "tenantplane.services.router.sdk",
    "TenantMiddleware": "tenantplane.services.router.propagation",
    "current_tenant": "tenantplane.services.router.propagation",
    "routed_client": "tenantplane.services.router.propagation",
    "JobContext": "tenantplane.services.worker.context",
    "JobKinds": "tenantplane.services.worker.kinds",
    "TenantConfig": "tenantplane.services.config.sdk",
    # Errors
    "AggregateBlocked": "tenantplane.services.runtime.errors",
    "ConcurrencyConflict": "tenantplane.services.runtime.errors",
    "EventLogUnavailable": "tenantplane.services.runtime.errors",
    "InvalidRequest": "tenantplane.services.runtime.errors",
    "TenantNotFound": "tenantplane.services.runtime.errors",
    "TenantSuspended": "tenantplane.services.runtime.errors",
    "TenantplaneError": "tenantplane.services.runtime.errors",
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
    "DomainKeys",
    "DomainStore",
    "Envelope",
    "Event",
    "EventLogUnavailable",
    "EventRegistry",
    "InvalidRequest",
    "JobClient",
    "JobContext",
    "JobKinds",
    "Keys",
    "Loaded",
    "LoopHandle",
    "MemoryOp",
    "MemoryStore",
    "Projection",
    "Projector",
    "RedisOp",
    "RedisRebuild",
    "RedisStore",
    "Resolver",
    "SealedValue",
    "Settings",
    "SqlStore",
    "StoredEvent",
    "StreamLimits",
    "Subjects",
    "Supervisor",
    "TenantConfig",
    "TenantMiddleware",
    "TenantNotFound",
    "TenantSuspended",
    "TenantplaneError",
    "Upcaster",
    "as_text",
    "connect_nats",
    "connect_redis",
    "current_tenant",
    "delete",
    "hdel",
    "hincrby",
    "hset",
    "routed_client",
    "sadd",
    "sealed",
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
