"""Every projection of the system, as operators see them (status, redrive, rebuild)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenantplane.contracts.keys import Keys
from tenantplane.contracts.subjects import Subjects
from tenantplane.services.config.projection import ConfigProjection
from tenantplane.services.router.projection import RouterProjection
from tenantplane.services.runtime.projector import Projection
from tenantplane.services.runtime.stores.redis_ops import RedisOp

Factory = Callable[[Subjects, Keys], tuple[Projection[RedisOp], list[str]]]


@dataclass(frozen=True)
class ProjectionInfo:
    """How to build a Redis projection for any key root (live, or a rebuild's shadow)."""

    name: str
    make: Factory

    def maker(self, subjects: Subjects) -> Callable[[Keys], tuple[Projection[RedisOp], list[str]]]:
        """Builds this projection for any key root of the installation `subjects` names."""
        return lambda keys: self.make(subjects, keys)

    def filters(self, subjects: Subjects) -> Sequence[str]:
        """The subject filters of its events."""
        projection, _ = self.make(subjects, Keys())
        return projection.filters()


def _config(subjects: Subjects, keys: Keys) -> tuple[Projection[RedisOp], list[str]]:
    projection = ConfigProjection(subjects, keys)
    return projection, list(projection.owned_patterns())


def _router(subjects: Subjects, keys: Keys) -> tuple[Projection[RedisOp], list[str]]:
    projection = RouterProjection(subjects, keys)
    return projection, list(projection.owned_patterns())


PROJECTIONS: dict[str, ProjectionInfo] = {
    "config": ProjectionInfo("config", _config),
    "router": ProjectionInfo("router", _router),
}
