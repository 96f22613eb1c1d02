"""The in-memory read-model store: state per tenant in the process, for tests and for
services that rebuild what they keep in memory from the log at every start."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenantplane.services.runtime.stores.base import CommitResult, Position

State = dict[str, Any]


@dataclass(frozen=True)
class MemoryOp:
    """A change to one tenant's state (None as `update`: forget the tenant's state)."""

    tenant: str
    update: Callable[[State], None] | None


class MemoryStore:
    """A projection's read model (a dict per tenant) and position, in this process.

    A commit runs without awaiting, so it is atomic for every reader of the process.
    """

    kind = "memory"

    def __init__(self, projection: str) -> None:
        self.projection = projection
        self.tenants: dict[str, State] = {}
        self._position = Position(checkpoint=0)

    def state(self, tenant: str) -> State:
        """One tenant's part of the read model (empty when it has none)."""
        return self.tenants.get(tenant, {})

    async def load(self) -> Position:
        """The position of the last commit."""
        return self._position

    async def commit(
        self,
        expected: int,
        new: int,
        ops: Sequence[MemoryOp],
        *,
        block: Mapping[str, int] = {},
        unblock: Sequence[str] = (),
        parked: int = 0,
        events: Sequence[tuple[int, int]] = (),
    ) -> CommitResult:
        """Apply `ops` and move the checkpoint, if it still is `expected`."""
        current = self._position
        if current.checkpoint != expected:
            return CommitResult(False, current.checkpoint)
        for op in ops:
            if op.update is None:
                self.tenants.pop(op.tenant, None)
            else:
                op.update(self.tenants.setdefault(op.tenant, {}))
        blocked = {s: q for s, q in {**current.blocked, **block}.items() if s not in unblock}
        self._position = Position(new, blocked, current.parked + parked)
        return CommitResult(True, new)

    async def clearing(self, tenant: str | None = None) -> list[MemoryOp]:
        """Forget one tenant's state (every tenant's for None)."""
        tenants = list(self.tenants) if tenant is None else [tenant]
        return [MemoryOp(t, None) for t in tenants]

    async def reset(self) -> None:
        """Forget the read model and the position."""
        self.tenants.clear()
        self._position = Position(checkpoint=0)
