"""Every projection of the system, as operators see them (status, redrive, rebuild)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts.keys import Keys
from contracts.subjects import Subjects
from services.config.projection import ConfigProjection


@dataclass(frozen=True)
class ProjectionInfo:
    """How to find a projection's events and its Redis position."""

    name: str
    filters: Callable[[Subjects], Sequence[str]]


def _config_filters(subjects: Subjects) -> Sequence[str]:
    return ConfigProjection(subjects, Keys()).filters()


PROJECTIONS: tuple[ProjectionInfo, ...] = (ProjectionInfo("config", _config_filters),)
