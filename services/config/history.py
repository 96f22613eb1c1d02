"""History and time travel of a tenant, computed from the log on demand."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantplane.contracts.discards import EventDiscarded
from tenantplane.contracts.rollouts import ConfigRolloutJoined, ConfigRolloutLeft
from tenantplane.services.config.reader import REDACTED
from tenantplane.services.config.state import CONFIG_EVENTS, TenantState, evolve
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent
from tenantplane.services.runtime.timetravel import fold_until

_ABSENT = object()


@dataclass(frozen=True)
class Change:
    """One change of a tenant: who, when, why, and what went from old to new."""

    seq: int
    at: datetime
    actor: str
    reason: str
    event: str
    key: str | None
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        """For CLI output."""
        return {**self.__dict__, "at": self.at.isoformat(timespec="seconds")}


async def history(log: EventLog, tenant_id: str, key: str | None = None) -> list[Change]:
    """Every change of a tenant, oldest first; with `key`, only that key's changes (its
    own value under a rollout's included)."""
    changes: list[Change] = []
    state = TenantState(tenant_id)
    async for stored in log.read(log.subjects.tenant_state(tenant_id)):
        after = evolve(state, stored)
        changes.extend(c for c in _diff(state, after, stored) if key is None or _of(c, key))
        state = after
    return changes


def _of(change: Change, key: str) -> bool:
    return change.key is not None and (change.key == key or change.key == own_key(key))


def own_key(key: str) -> str:
    """How a key a rollout holds shows the tenant's own value under it."""
    return f"{key} (own)"


def _diff(before: TenantState, after: TenantState, stored: StoredEvent) -> list[Change]:
    envelope = stored.envelope

    data = envelope.data
    event = envelope.type
    if isinstance(data, ConfigRolloutJoined | ConfigRolloutLeft):
        event = f"{event} {data.rollout}"
    if isinstance(data, ConfigRolloutLeft):
        event = f"{event} ({'promoted' if data.promoted else 'aborted'})"

    def change(key: str | None, old: Any, new: Any) -> Change:
        old, new = (None if v is _ABSENT else v for v in (old, new))
        return Change(
            stored.seq, envelope.occurred_at, envelope.actor, envelope.reason,
            event, key, old, new,
        )  # fmt: skip

    if isinstance(envelope.data, EventDiscarded):
        return [change(None, None, f"discarded event {envelope.data.seq}")]
    if not isinstance(envelope.data, CONFIG_EVENTS):
        old = before.status.value if before.status else None
        new = after.status.value if after.status else None
        return [change(None, old, new)]
    old_view, new_view = visible(before), visible(after)
    if isinstance(data, ConfigRolloutLeft):
        return _left(data, old_view, new_view, after, change)
    keys = sorted(set(old_view) | set(new_view))
    return [
        change(k, old_view.get(k, _ABSENT), new_view.get(k, _ABSENT))
        for k in keys
        if old_view.get(k, _ABSENT) != new_view.get(k, _ABSENT)
    ]


def _left(
    left: ConfigRolloutLeft,
    old_view: dict[str, Any],
    new_view: dict[str, Any],
    after: TenantState,
    change: Callable[[str | None, Any, Any], Change],
) -> list[Change]:
    """A rollout leaving a tenant: each key it held, changed or not (a promotion keeps
    the value seen), and the tenant's own value under it, now its value."""
    rows = []
    for key in sorted(left.keys):
        rows.append(change(key, old_view.get(key, _ABSENT), new_view.get(key, _ABSENT)))
        if own_key(key) in old_view:
            rows.append(change(own_key(key), old_view[own_key(key)], after.values.get(key)))
    return rows


def config_diff(before: TenantState, after: TenantState) -> list[dict[str, Any]]:
    """Each key whose value differs between two states (secrets as markers)."""
    old_view, new_view = visible(before), visible(after)
    return [
        {"key": k, "old": old_view.get(k), "new": new_view.get(k)}
        for k in sorted(set(old_view) | set(new_view))
        if old_view.get(k, _ABSENT) != new_view.get(k, _ABSENT)
    ]


def visible(state: TenantState) -> dict[str, Any]:
    """Config as an operator may see it: secrets as a marker carrying their ciphertext id;
    under each key a rollout holds, the tenant's own value as `<key> (own)`."""
    view = dict(state.values)
    view.update({k: _marker(s.ciphertext) for k, s in state.secrets.items()})
    for key, held in state.held.items():
        if key in view:
            view[own_key(key)] = view[key]
        view[key] = held.value
    return view


def _marker(ciphertext: str) -> str:
    """Redacted, yet different for different ciphertexts, so a change still shows."""
    return f"{REDACTED}#{hashlib.sha256(ciphertext.encode()).hexdigest()[:8]}"


async def state_at(
    log: EventLog, tenant_id: str, *, seq: int | None = None, at: datetime | None = None
) -> TenantState:
    """A tenant's state as of stream sequence `seq`, or as of time `at`."""
    boundary = log.subjects.tenant_state(tenant_id)
    return await fold_until(log, boundary, TenantState(tenant_id), evolve, seq=seq, at=at)
