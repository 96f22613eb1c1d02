"""What a running job gets: its tenant, its tenant's config and secrets, progress, cancel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenantplane.services.config.sdk import TenantConfig


class JobCancelledError(Exception):
    """Raised by `check_cancelled()` when the job was asked to stop."""


@dataclass(frozen=True)
class JobContext:
    """The context of one attempt of one job.

    `config` is a snapshot of the job's own tenant's config taken at start;
    `secrets()` reveals only that tenant's secrets. A job cannot name another
    tenant: nothing here takes a tenant id.
    """

    tenant_id: str
    job_id: str
    attempt: int
    config: TenantConfig
    _secrets: Callable[[], dict[str, Any]]
    _progress: Callable[[float, str], None]
    _cancelled: Callable[[], bool]

    def secrets(self) -> dict[str, Any]:
        """This tenant's decrypted secrets."""
        return self._secrets()

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1); published as a JobProgressed event."""
        self._progress(min(max(fraction, 0.0), 1.0), message)

    def check_cancelled(self) -> None:
        """Stop here if the job was cancelled (raises JobCancelledError)."""
        if self._cancelled():
            raise JobCancelledError(f"job {self.job_id} was cancelled")
