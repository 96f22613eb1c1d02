"""Identifiers: tenant ids, event ids, idempotency keys."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator

from tenantplane.contracts.errors import InvalidTenantId

TENANT_ID_MAX = 63
_TENANT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?")
# A name used inside subjects (service, projection, pool), as a pattern schemas can carry.
NAME_PATTERN = f"^{_NAME.pattern}$"
_EVENT_ID_NAMESPACE = uuid.UUID("6c1a3f5e-8a4f-4f0b-9a59-6f7e2d1c0b3a")


def validate_tenant_id(value: str) -> str:
    """Return `value` if it is a tenant slug; raise `InvalidTenantId` naming the rule otherwise.

    A tenant id is 1-63 characters of lowercase ASCII letters, digits and inner
    hyphens. It appears verbatim in subjects and Redis keys, so anything that
    could act as a wildcard or separator ('.', '*', '>', ':', spaces) is refused.
    """
    if not isinstance(value, str):
        raise InvalidTenantId(f"tenant id must be a string, got {type(value).__name__}")
    if _TENANT_ID.fullmatch(value) is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidTenantId(
            f"invalid tenant id {shown!r}: use 1-{TENANT_ID_MAX} lowercase letters, digits "
            "and hyphens, starting and ending with a letter or digit"
        )
    return value


def validate_name(value: str, what: str = "name") -> str:
    """Validate a slug-like name used inside subjects (service, projection, pool)."""
    if _NAME.fullmatch(value) is None:
        raise ValueError(
            f"invalid {what} {value[:80]!r}: use 1-63 lowercase letters, digits, '-' and '_'"
        )
    return value


TenantId = Annotated[str, AfterValidator(validate_tenant_id)]

# The scope of events about the platform rather than one tenant (a service's
# versions, default, rollout). It can never be a tenant id: those start with a
# letter or digit.
PLATFORM = "_platform"


def validate_scope(value: str) -> str:
    """A tenant id, or the platform scope."""
    return value if value == PLATFORM else validate_tenant_id(value)


Scope = Annotated[str, AfterValidator(validate_scope)]


def new_event_id() -> str:
    """A fresh, unique event id."""
    return str(uuid.uuid4())


def derived_event_id(idempotency_key: str, index: int) -> str:
    """The event id of the `index`-th event a command with `idempotency_key` appends.

    Deterministic, so a retried command publishes the same ids and JetStream's
    duplicate window stores its events once.
    """
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{idempotency_key}/{index}"))
