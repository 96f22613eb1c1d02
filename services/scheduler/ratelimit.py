"""Per-tenant rate limits: a token bucket per tenant, refilled per minute."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Refilled at `rate` per second, holding at most `burst` tokens."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        """Spend a token if there is one."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def has(self, now: float) -> bool:
        """Whether a token is there to spend."""
        return min(self.burst, self.tokens + (now - self.at) * self.rate) >= 1.0


class RateLimits:
    """Each tenant's bucket of job starts: `per_minute` of them, a minute's worth at once."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def allows(self, tenant_id: str, per_minute: int) -> bool:
        """Whether the tenant may start a job now."""
        return self._bucket(tenant_id, per_minute).has(self._clock())

    def spend(self, tenant_id: str, per_minute: int) -> None:
        """Count a job the tenant started."""
        self._bucket(tenant_id, per_minute).take(self._clock())

    def clear(self) -> None:
        """Forget every bucket (full again)."""
        self._buckets.clear()

    def _bucket(self, tenant_id: str, per_minute: int) -> TokenBucket:
        burst = max(1.0, float(per_minute))
        bucket = self._buckets.get(tenant_id)
        if bucket is None or bucket.burst != burst:
            now = self._clock()
            bucket = self._buckets[tenant_id] = TokenBucket(per_minute / 60, burst, burst, now)
        return bucket
