"""Per-home rate limit: a token bucket, so a burst after an outage is fine, a loop is not."""

from __future__ import annotations

from dataclasses import dataclass
import math
import time


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second on average, up to ``burst`` at once, per key."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._now = time.monotonic

    def acquire(self, key: str) -> float | None:
        """None if allowed now, else the seconds to wait before the next request."""
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return math.ceil((1 - bucket.tokens) / self.rate)
