"""Read-model stores: each commits a projector's batch and checkpoint atomically."""

from services.runtime.stores.base import (
    CommitResult,
    Position,
    ProjectionStore,
    StoreUnavailable,
)

__all__ = ["CommitResult", "Position", "ProjectionStore", "StoreUnavailable"]
