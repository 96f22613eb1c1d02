"""Identifiers: tenant ids, names, job and aggregate ids, event ids.

Each rule is one regular expression here: the validators match it and the
exported JSON Schemas show it as their `pattern`, so a publisher in another
language checks exactly what the services check. Patterns are anchored
(`^...$`) because JSON Schema patterns are searched, not matched whole.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, WithJsonSchema

from tenantplane.contracts.errors import InvalidTenantId

TENANT_ID_MAX = 63
_TENANT_ID_BODY = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
TENANT_ID_PATTERN = rf"^{_TENANT_ID_BODY}$"
# Names inside subjects and keys: services, schedule ids, pools, projections.
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$"
# Job ids stand in subjects too, without '_' (they are UUIDs when tenantplane makes them).
JOB_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
# The id of a domain's aggregate: the last token of its subjects.
AGGREGATE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"

_TENANT_ID = re.compile(TENANT_ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_JOB_ID = re.compile(JOB_ID_PATTERN)
_VALID_TENANT_IDS: set[str] = set()
_REMEMBERED = 131_072
_EVENT_ID_NAMESPACE = uuid.UUID("6c1a3f5e-8a4f-4f0b-9a59-6f7e2d1c0b3a")


def validate_tenant_id(value: str) -> str:
    """Return `value` if it is a tenant slug; raise `InvalidTenantId` naming the rule otherwise.

    A tenant id is 1-63 characters of lowercase ASCII letters, digits and inner
    hyphens. It appears verbatim in subjects and Redis keys, so anything that
    could act as a wildcard or separator ('.', '*', '>', ':', spaces) is refused.
    """
    # Every subject and key built for an event checks its tenant: ids seen valid are
    # remembered (a set lookup instead of a regular expression).
    if type(value) is str and value in _VALID_TENANT_IDS:
        return value
    if not isinstance(value, str):
        raise InvalidTenantId(f"tenant id must be a string, got {type(value).__name__}")
    if _TENANT_ID.fullmatch(value) is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidTenantId(
            f"invalid tenant id {shown!r}: use 1-{TENANT_ID_MAX} lowercase letters, digits "
            "and hyphens, starting and ending with a letter or digit"
        )
    if type(value) is str:
        if len(_VALID_TENANT_IDS) >= _REMEMBERED:
            _VALID_TENANT_IDS.clear()
        _VALID_TENANT_IDS.add(value)
    return value


def validate_name(value: str, what: str = "name") -> str:
    """Validate a slug-like name used inside subjects (service, projection, pool)."""
    if _NAME.fullmatch(value) is None:
        raise ValueError(
            f"invalid {what} {value[:80]!r}: use 1-63 lowercase letters, digits, '-' and '_'"
        )
    return value


def validate_job_id(value: str) -> str:
    """Validate a job id: 1-63 lowercase letters, digits and inner hyphens."""
    if _JOB_ID.fullmatch(value) is None:
        raise ValueError(
            f"invalid job id {value[:80]!r}: use 1-63 lowercase letters, digits and inner hyphens"
        )
    return value


def _pattern_schema(pattern: str, description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description})


TenantId = Annotated[
    str,
    AfterValidator(validate_tenant_id),
    _pattern_schema(TENANT_ID_PATTERN, "1-63 lowercase letters, digits and inner hyphens"),
]
# The same rule checked inside pydantic-core, without a Python call: for envelopes
# decoded from the log (`typed_envelope`), where a refusal parks the event with its
# reason; what people type is checked with `TenantId` and its plain-words error.
LoggedTenantId = Annotated[
    str,
    StringConstraints(pattern=TENANT_ID_PATTERN),
    _pattern_schema(TENANT_ID_PATTERN, "1-63 lowercase letters, digits and inner hyphens"),
]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
JobId = Annotated[str, StringConstraints(pattern=JOB_ID_PATTERN)]
AggregateId = Annotated[str, StringConstraints(pattern=AGGREGATE_ID_PATTERN)]

# The scope of events about the platform rather than one tenant (a service's
# versions, default, rollout). It can never be a tenant id: those start with a
# letter or digit.
PLATFORM = "_platform"
SCOPE_PATTERN = rf"^(?:{PLATFORM}|{_TENANT_ID_BODY})$"


def validate_scope(value: str) -> str:
    """A tenant id, or the platform scope."""
    return value if value == PLATFORM else validate_tenant_id(value)


Scope = Annotated[
    str,
    AfterValidator(validate_scope),
    _pattern_schema(SCOPE_PATTERN, f"a tenant id, or {PLATFORM} for the platform itself"),
]


def new_event_id() -> str:
    """A fresh, unique event id."""
    return str(uuid.uuid4())


def derived_event_id(idempotency_key: str, index: int) -> str:
    """The event id of the `index`-th event a command with `idempotency_key` appends.

    Deterministic, so a retried command publishes the same ids and JetStream's
    duplicate window stores its events once.
    """
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{idempotency_key}/{index}"))
