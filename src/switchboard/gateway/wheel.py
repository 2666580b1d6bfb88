"""Hashed timing wheel that finds silent connections in O(1) per heartbeat.

The wheel is a ring of ``size`` buckets, one per tick. Touching an entry moves
it to the bucket of its deadline tick, recorded with that tick number; each
:meth:`advance` visits only the bucket of the new tick and expires the entries
whose deadline has come. An entry whose deadline lies more than ``size`` ticks
ahead sits in its bucket across several turns of the ring and is skipped until
its turn (the "hashed" wheel with rounds). The wheel knows no clock: the
gateway calls :meth:`advance` once a tick, tests call it directly.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["TimingWheel"]

K = TypeVar("K", bound=Hashable)


class TimingWheel(Generic[K]):
    """Deadlines in whole ticks for a set of keys.

    An entry touched at tick ``t`` with a timeout of ``n`` ticks expires at the
    advance to tick ``t + n``; since an advance happens once per tick, a
    silent key is reported within its timeout plus one tick of real time.
    """

    __slots__ = ("_buckets", "_deadlines", "_size", "now")

    def __init__(self, size: int = 64) -> None:
        if size < 1:
            raise ValueError(f"wheel size must be at least 1, got {size}")
        self._size = size
        self._buckets: list[dict[K, None]] = [{} for _ in range(size)]
        self._deadlines: dict[K, int] = {}
        self.now = 0
        """Current tick number."""

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, key: object) -> bool:
        return key in self._deadlines

    def touch(self, key: K, timeout_ticks: int) -> None:
        """Set ``key``'s deadline to ``timeout_ticks`` ticks from now (at least 1)."""
        deadline = self.now + max(1, timeout_ticks)
        old = self._deadlines.get(key)
        if old == deadline:
            return
        if old is not None:
            del self._buckets[old % self._size][key]
        self._deadlines[key] = deadline
        self._buckets[deadline % self._size][key] = None

    def discard(self, key: K) -> None:
        """Forget ``key``; no error if it is absent."""
        deadline = self._deadlines.pop(key, None)
        if deadline is not None:
            del self._buckets[deadline % self._size][key]

    def advance(self) -> list[K]:
        """Move to the next tick and return the keys whose deadline it is."""
        self.now += 1
        bucket = self._buckets[self.now % self._size]
        if not bucket:
            return []
        deadlines = self._deadlines
        expired = [key for key in bucket if deadlines[key] <= self.now]
        for key in expired:
            del bucket[key]
            del deadlines[key]
        return expired
