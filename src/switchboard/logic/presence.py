"""Presence: whether a user is online, and when it was last seen.

A user is online while at least one of its devices is connected. A
connection watches users with ``PresenceSubscribe``; the server replies with
their presence and then sends a ``Presence`` frame whenever one of them comes
online or goes offline. Only the user itself and its conversation peers are
reported (logic/peers.py). Changes of one user are sent at most once per
``presence_interval``: a change within it waits, and one that is undone
within it is never sent, so a flapping connection costs its watchers little.
Presence is never stored in inboxes nor sent to offline devices; the last
seen time is stored, so it survives restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from switchboard.bus.base import Bus, Endpoint, Inbound, Outbound
from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import UserId
from switchboard.logic.peers import PeerDirectory
from switchboard.logic.routing import RoutingTable
from switchboard.protocol import pb
from switchboard.protocol.frames import encode
from switchboard.store.base import Store

__all__ = ["PresenceService"]

logger = logging.getLogger("switchboard.logic")


@dataclass(frozen=True, slots=True)
class _Published:
    online: bool
    at: float
    """time.monotonic() of the publication."""


@dataclass(frozen=True, slots=True)
class _Watch:
    user_id: UserId
    """The user of the watching connection."""
    watched: frozenset[UserId]


class PresenceService:
    """Tracks online users and tells watching connections of changes."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        routing: RoutingTable,
        peers: PeerDirectory,
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._routing = routing
        self._peers = peers
        self._online: set[UserId] = set()
        self._last_seen: dict[UserId, int] = {}
        """Last seen times written since the start, in ms; a cache of the store."""
        self._watches: dict[Endpoint, _Watch] = {}
        self._watchers: dict[UserId, set[Endpoint]] = {}
        self._published: dict[UserId, _Published] = {}
        self._timers: dict[UserId, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # Frames and connection events from the chat service.

    async def on_subscribe(self, item: Inbound) -> None:
        """Replace the connection's watched users and send their presence.

        Raises RequestError INVALID_ARGUMENT for more than
        ``max_presence_users`` users.
        """
        request = pb.PresenceSubscribe.FromString(item.payload)
        users = list(dict.fromkeys(UserId(user) for user in request.users))
        limit = self._settings.max_presence_users
        if len(users) > limit:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT,
                f"a PresenceSubscribe lists {len(users)} users; watch at most"
                f" {limit} at once",
            )
        self._unwatch(item.endpoint)
        if users:
            self._watch(item.endpoint, item.user_id, users)

        visible = await self._peers.peers_among(item.user_id, users)
        visible.add(item.user_id)
        shown = [user for user in users if user in visible]
        update = pb.PresenceUpdate(users=await self._presences(shown))
        self._bus.publish_outbound(Outbound(item.endpoint, encode(update)))

    async def connected(self, user_id: UserId) -> None:
        """Note that a device of the user connected."""
        await self._check(user_id)

    async def closed(self, endpoint: Endpoint, user_id: UserId) -> None:
        """Note that a connection of the user closed; forget what it watched."""
        self._unwatch(endpoint)
        await self._check(user_id)

    # Watch lists.

    def _watch(self, endpoint: Endpoint, user_id: UserId, users: list[UserId]) -> None:
        self._watches[endpoint] = _Watch(user_id, frozenset(users))
        for user in users:
            self._watchers.setdefault(user, set()).add(endpoint)

    def _unwatch(self, endpoint: Endpoint) -> None:
        watch = self._watches.pop(endpoint, None)
        if watch is None:
            return
        for user in watch.watched:
            endpoints = self._watchers.get(user)
            if endpoints is not None:
                endpoints.discard(endpoint)
                if not endpoints:
                    del self._watchers[user]

    # Changes.

    async def _check(self, user_id: UserId) -> None:
        """Compare the user's routes with its known state; act on a change."""
        online = bool(await self._routing.lookup(user_id))
        if online == (user_id in self._online):
            return
        if online:
            self._online.add(user_id)
        else:
            self._online.discard(user_id)
        # Connecting counts as being seen too, so a server that crashes with
        # the user online still has a recent time.
        now = time.time_ns() // 1_000_000
        self._last_seen[user_id] = now
        self._spawn(self._save_last_seen(user_id, now))
        self._schedule(user_id)

    async def _save_last_seen(self, user_id: UserId, seen_at: int) -> None:
        try:
            await self._store.set_last_seen(user_id, seen_at)
        except Exception:
            logger.exception("saving the last seen time failed user=%d", user_id)

    def _schedule(self, user_id: UserId) -> None:
        """Publish the user's presence now, or once the interval has passed."""
        if user_id in self._timers:
            return  # the pending publication sends the latest state
        previous = self._published.get(user_id)
        wait = 0.0
        if previous is not None:
            wait = previous.at + self._settings.presence_interval - time.monotonic()
        if wait <= 0:
            self._spawn(self._publish(user_id))
            return
        loop = asyncio.get_running_loop()
        self._timers[user_id] = loop.call_later(
            wait, lambda: self._spawn(self._publish(user_id))
        )

    async def _publish(self, user_id: UserId) -> None:
        self._timers.pop(user_id, None)
        online = user_id in self._online
        previous = self._published.get(user_id)
        if previous is not None and previous.online == online:
            return  # the change was undone before it was sent
        self._published[user_id] = _Published(online, time.monotonic())

        endpoints = list(self._watchers.get(user_id, ()))
        if not endpoints:
            return
        watching = {self._watches[endpoint].user_id for endpoint in endpoints}
        allowed = await self._peers.peers_among(user_id, watching)
        allowed.add(user_id)
        data = encode(pb.PresenceUpdate(users=await self._presences([user_id])))
        for endpoint in endpoints:
            watch = self._watches.get(endpoint)
            if watch is not None and watch.user_id in allowed:
                self._bus.publish_outbound(Outbound(endpoint, data))

    # Helpers.

    async def _presences(self, users: Sequence[UserId]) -> list[pb.UserPresence]:
        offline = [u for u in users if u not in self._online]
        unknown = [u for u in offline if u not in self._last_seen]
        stored = await self._store.last_seen(unknown) if unknown else {}
        presences = []
        for user in users:
            if user in self._online:
                presences.append(pb.UserPresence(user=user, online=True))
                continue
            seen = self._last_seen.get(user) or stored.get(user, 0)
            presences.append(pb.UserPresence(user=user, last_seen=seen))
        return presences

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("presence update failed", exc_info=task.exception())
