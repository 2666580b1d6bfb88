"""Token buckets for rate limits, keyed by user, address or connection.

Pure logic with an explicit clock: callers pass ``now`` in seconds (usually
``time.monotonic()``), so tests can drive time directly.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["KeyedLimiter", "TokenBucket"]

K = TypeVar("K", bound=Hashable)


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; starts full."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(
                f"invalid token bucket rate={rate} burst={burst}: rate must be"
                " positive and burst at least 1"
            )
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(
                self.burst, self.tokens + (now - self.updated) * self.rate
            )
            self.updated = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens if there are enough.

        Returns 0.0 on success, otherwise the seconds until there will be
        enough; nothing is spent then.
        """
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate

    def wait(self, now: float, cost: float = 1.0) -> float:
        """Return the seconds until ``cost`` tokens are there; spend nothing."""
        self._refill(now)
        return max(0.0, (cost - self.tokens) / self.rate)

    def debit(self, now: float, cost: float) -> float:
        """Spend ``cost`` tokens even into debt; return the seconds of debt."""
        self._refill(now)
        self.tokens -= cost
        return max(0.0, -self.tokens / self.rate)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


class KeyedLimiter(Generic[K]):
    """One token bucket per key, created on first use.

    A rate of 0 disables the limit. Full buckets are dropped now and then, so
    memory follows the number of recently active keys.
    """

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: dict[K, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: K, now: float, cost: float = 1.0) -> float:
        """Spend from ``key``'s bucket; return 0.0 or the seconds to wait."""
        if not self.enabled:
            return 0.0
        return self._bucket(key, now).take(now, cost)

    def wait(self, key: K, now: float, cost: float = 1.0) -> float:
        """Return the seconds until ``key`` may spend ``cost``; spend nothing."""
        bucket = self._buckets.get(key)
        if not self.enabled or bucket is None:
            return 0.0
        return bucket.wait(now, cost)

    def debit(self, key: K, now: float, cost: float) -> float:
        """Spend from ``key``'s bucket even into debt; return the seconds of debt."""
        if not self.enabled:
            return 0.0
        return self._bucket(key, now).debit(now, cost)

    def _bucket(self, key: K, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._drop_full(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket

    def _drop_full(self, now: float) -> None:
        # NOTE: a linear scan; it runs only when max_keys buckets exist, and
        # a full bucket is the same as no bucket.
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()
