"""Reconnect delays: exponential backoff with full jitter.

Full jitter draws each delay uniformly from zero to the exponential bound, so
that many clients that lost their connections at the same moment (a server
restart, a network outage) spread their reconnects over time instead of
arriving together.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays in seconds for consecutive failed connection attempts."""

    __slots__ = ("_random", "attempt", "base", "cap")

    def __init__(
        self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(
                f"invalid backoff base={base} cap={cap}: need 0 < base <= cap"
            )
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._random = rng or random.Random()

    def bound(self, attempt: int) -> float:
        """Return the longest delay for the ``attempt``-th retry (from 0)."""
        # Cap the exponent too: 2.0 ** 1100 overflows a float.
        return min(self.cap, self.base * 2.0 ** min(attempt, 64))

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        delay = self._random.uniform(0.0, self.bound(self.attempt))
        self.attempt += 1
        return delay

    def jitter(self, delay: float) -> float:
        """Return ``delay`` plus up to ``base`` seconds of random jitter."""
        return delay + self._random.uniform(0.0, self.base)

    def reset(self) -> None:
        """Start over after a connection that the server accepted."""
        self.attempt = 0
