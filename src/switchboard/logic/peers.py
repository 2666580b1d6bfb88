"""Conversation peers: who may see a user's typing and presence.

Two users are peers when each has sent the other a one-to-one message, or
when they share a group (``Store.peers_among``). A one-way message makes no
peers, so a stranger cannot learn when someone is online by writing to them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from switchboard.ids import UserId
from switchboard.store.base import Store

__all__ = ["PeerDirectory"]

PEER_TTL: Final = 30.0
"""Seconds a positive result is reused. A user removed from a group remains
the members' peer for this long."""
STRANGER_TTL: Final = 5.0
"""Seconds a negative result is reused; two users who just became peers wait
this long at most."""
MAX_ENTRIES: Final = 100_000


class PeerDirectory:
    """Looks up peers in the store, with a short-lived cache."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[tuple[UserId, UserId], tuple[bool, float]] = {}

    async def peers_among(
        self, user_id: UserId, candidates: Iterable[UserId]
    ) -> set[UserId]:
        """Return the candidates that are peers of ``user_id``; never itself."""
        now = time.monotonic()
        peers: set[UserId] = set()
        unknown: list[UserId] = []
        for candidate in dict.fromkeys(candidates):
            if candidate == user_id:
                continue
            cached = self._cache.get(_pair(user_id, candidate))
            if cached is None or cached[1] <= now:
                unknown.append(candidate)
            elif cached[0]:
                peers.add(candidate)
        if unknown:
            found = await self._store.peers_among(user_id, unknown)
            self._remember(user_id, unknown, found, now)
            peers |= found
        return peers

    async def is_peer(self, user_id: UserId, other: UserId) -> bool:
        return other in await self.peers_among(user_id, [other])

    def _remember(
        self,
        user_id: UserId,
        asked: list[UserId],
        peers: set[UserId],
        now: float,
    ) -> None:
        if len(self._cache) + len(asked) > MAX_ENTRIES:
            # NOTE: dropping every cached result at once is crude, but costs at most
            # one store query per pair afterwards.
            self._cache.clear()
        for candidate in asked:
            is_peer = candidate in peers
            expires = now + (PEER_TTL if is_peer else STRANGER_TTL)
            self._cache[_pair(user_id, candidate)] = (is_peer, expires)


def _pair(first: UserId, second: UserId) -> tuple[UserId, UserId]:
    """Return the cache key of two users; the peer relation is symmetric."""
    return (first, second) if first <= second else (second, first)
