"""Rate limits as token buckets (per home: a burst after an outage is fine, a loop is not;
per client address: how many refused requests it may cause)."""

from __future__ import annotations

from dataclasses import dataclass
import math
import time

#: Keys tracked at most before full buckets are forgotten.
MAX_KEYS = 100_000


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

    def _refill(self, key: str) -> _Bucket:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they would start full anyway): many keys
        (addresses) cost memory only while they are being limited."""
        self._buckets = {
            key: bucket
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate < self.burst
        }

    def acquire(self, key: str, cost: float = 1.0) -> float | None:
        """None if allowed now (taking ``cost``, which may leave the bucket in debt), else the
        seconds to wait before the next request."""
        bucket = self._refill(key)
        if bucket.tokens >= 1:
            bucket.tokens -= cost
            return None
        return self._wait(bucket)

    def blocked(self, key: str) -> float | None:
        """Like :meth:`acquire` but takes nothing: the seconds to wait while ``key`` is empty."""
        if key not in self._buckets:
            return None
        bucket = self._refill(key)
        return None if bucket.tokens >= 1 else self._wait(bucket)

    def _wait(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))
