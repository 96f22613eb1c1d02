"""The audit stream: every reveal of a tenant's secrets, who asked and for which job.

A record is written before the secrets leave the config service; when it cannot
be written, nothing is revealed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import orjson
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from tenantplane.contracts.subjects import Subjects
from tenantplane.services.runtime.consumers import read_raw
from tenantplane.services.runtime.errors import EventLogUnavailable
from tenantplane.services.runtime.transient import NATS_UNAVAILABLE

AUDIT_MAX_AGE_S = 400 * 24 * 3600  # a year and a month


@dataclass(frozen=True)
class Reveal:
    """One reveal: when, who (actor and pool), which tenant's keys, for which job."""

    at: str
    actor: str
    tenant_id: str
    pool: str
    keys: tuple[str, ...]
    job_id: str | None


class RevealAudit:
    """Writes and reads reveal records."""

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self.js, self.subjects = js, subjects

    def stream_config(self, replicas: int = 1) -> StreamConfig:
        """The audit stream (kept a year and a month)."""
        return StreamConfig(
            name=self.subjects.audit_stream, subjects=[self.subjects.all_audit()],
            storage=StorageType.FILE, num_replicas=replicas, max_age=AUDIT_MAX_AGE_S,
        )  # fmt: skip

    async def record(
        self, *, actor: str, tenant_id: str, pool: str, keys: Sequence[str], job_id: str | None
    ) -> None:
        """Record a reveal, before it happens.

        Raises:
            EventLogUnavailable: the record could not be stored (reveal nothing).
        """
        reveal = Reveal(datetime.now(UTC).isoformat(timespec="seconds"), actor, tenant_id,
                        pool, tuple(keys), job_id)  # fmt: skip
        try:
            await self.js.publish(
                self.subjects.audit(tenant_id, "reveal"), orjson.dumps(asdict(reveal)),
                stream=self.subjects.audit_stream, timeout=5.0,
            )  # fmt: skip
        except NATS_UNAVAILABLE as e:
            raise EventLogUnavailable(f"cannot record the reveal: {e!r}") from e

    async def reveals(self, tenant_id: str | None = None) -> AsyncIterator[Reveal]:
        """Recorded reveals (of one tenant), oldest first."""
        stream, filter_ = self.subjects.audit_stream, self.subjects.all_audit(tenant_id)
        async for raw in read_raw(self.js, stream, filter_):
            fields = orjson.loads(raw.data)
            yield Reveal(**{**fields, "keys": tuple(fields["keys"])})
