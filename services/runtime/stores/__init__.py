"""Read-model stores: each commits a projector's batch and checkpoint atomically."""

from tenantplane.services.runtime.errors import StoreUnavailable
from tenantplane.services.runtime.stores.base import CommitResult, Position, ProjectionStore

__all__ = ["CommitResult", "Position", "ProjectionStore", "StoreUnavailable"]
