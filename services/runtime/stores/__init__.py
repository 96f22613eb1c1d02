"""Read-model stores: each commits a projector's batch and checkpoint atomically."""

from services.runtime.errors import StoreUnavailable
from services.runtime.stores.base import CommitResult, Position, ProjectionStore

__all__ = ["CommitResult", "Position", "ProjectionStore", "StoreUnavailable"]
