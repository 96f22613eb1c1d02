"""What a running job gets: its tenant, its tenant's config and secrets, progress, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantplane.services.config.sdk import TenantConfig
from tenantplane.services.worker.channel import Requests


class JobCancelledError(Exception):
    """Raised by `check_cancelled()` when the job was asked to stop."""


@dataclass(frozen=True)
class JobContext:
    """The context of one attempt of one job.

    `config` is a snapshot of the job's own tenant's config taken at start;
    `secrets()` reveals only that tenant's secrets. A job cannot name another
    tenant: nothing here takes a tenant id, and everything it asks of its worker
    goes through `_requests` (see `channel.py`), from which no object leads to
    the worker, its connections or other tenants' data.
    """

    tenant_id: str
    job_id: str
    attempt: int
    config: TenantConfig
    _requests: Requests

    def secrets(self) -> dict[str, Any]:
        """This tenant's decrypted secrets."""
        revealed: dict[str, Any] = self._requests.ask({"ask": "secrets"})
        return revealed

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1); published as a JobProgressed event."""
        fraction = min(max(fraction, 0.0), 1.0)
        self._requests.ask({"ask": "progress", "fraction": fraction, "message": message})

    def check_cancelled(self) -> None:
        """Stop here if the job was cancelled (raises JobCancelledError)."""
        if self._requests.ask({"ask": "cancelled"}):
            raise JobCancelledError(f"job {self.job_id} was cancelled")
