"""The port every read-model store implements for the projector kernel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from tenantplane.services.runtime.errors import (
    StoreUnavailable as StoreUnavailable,  # also from here
)

OpT = TypeVar("OpT")


# In a commit's `events`: the ops of a rebuild in place (clearing, then the replay).
CLEARED = -(1 << 62)


@dataclass(frozen=True)
class Position:
    """How far a projection got: its checkpoint and the subjects waiting on parked events."""

    checkpoint: int
    blocked: Mapping[str, int] = field(default_factory=dict)
    parked: int = 0


@dataclass(frozen=True)
class CommitResult:
    """`ok`, or the checkpoint the store actually holds (someone else moved it), or
    `switching`: a rebuilt read model is being switched in (nothing was committed)."""

    ok: bool
    checkpoint: int
    switching: bool = False


class ProjectionStore(Protocol[OpT]):
    """Applies a batch of read-model operations and moves the checkpoint, atomically.

    `commit` only applies when the stored checkpoint still equals `expected`;
    otherwise it changes nothing and reports the stored checkpoint. That makes
    a retried or concurrent commit harmless: the effect happens exactly once.
    """

    async def load(self) -> Position:
        """The stored position (checkpoint 0 and nothing blocked for a new store)."""
        ...

    async def commit(
        self,
        expected: int,
        new: int,
        ops: Sequence[OpT],
        *,
        block: Mapping[str, int] = {},
        unblock: Sequence[str] = (),
        parked: int = 0,
        events: Sequence[tuple[int, int]] = (),
    ) -> CommitResult:
        """Apply `ops`, set the checkpoint to `new`, block/unblock subjects, count parked.

        `events`, when given, says which events `ops` came from: (sequence, number of
        ops) for each, in order; a negative sequence marks a dead letter re-driven
        (older than the checkpoint), and `CLEARED` the ops of a rebuild in place
        (what they write is then exactly the log up to `new`). A store that cannot
        commit everything in one atomic step (a Redis Cluster) uses them to apply
        each event once.
        """
        ...

    async def reset(self) -> None:
        """Forget the checkpoint, blocked subjects and the read model itself."""
        ...

    async def clearing(self, tenant: str | None = None) -> Sequence[OpT]:
        """The operations that delete one tenant's part of the read model (all of it for
        None), for a rebuild to commit together with the replayed operations.

        Raises:
            InvalidRequest: the store does not know which part is the tenant's.
        """
        ...
