"""An aggregate as it was: its events folded up to a sequence or a time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tenantplane.services.runtime.errors import InvalidInput
from tenantplane.services.runtime.eventlog import EventLog, StoredEvent

_RELATIVE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

S = TypeVar("S")


async def fold_until(
    log: EventLog,
    filter_: str,
    state: S,
    evolve: Callable[[S, StoredEvent], S],
    *,
    seq: int | None = None,
    at: datetime | None = None,
) -> S:
    """`state` after the events on `filter_` up to stream sequence `seq` (inclusive), or
    up to time `at`; every event without either."""
    async for stored in log.read(filter_, stop_seq=seq):
        if at is not None and stored.envelope.occurred_at > at:
            break
        state = evolve(state, stored)
    return state


def parse_point(text: str, now: datetime | None = None) -> tuple[int | None, datetime | None]:
    """`--at`: a stream sequence (`42`), a time (`2026-11-23T08:00Z`) or an age (`90m`, `2d`)."""
    if text.isdigit():
        return int(text), None
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        return None, (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--at {text!r}: give a sequence (42), a time (2026-11-23T08:00Z) or an age (90m)"
        ) from None
    return None, moment if moment.tzinfo else moment.replace(tzinfo=UTC)
