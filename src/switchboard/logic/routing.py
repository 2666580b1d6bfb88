"""Routing table: which connections each user's devices are on."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from switchboard.bus.base import Endpoint
from switchboard.ids import DeviceId, UserId

__all__ = ["MemoryRoutingTable", "RoutingTable"]


class RoutingTable(abc.ABC):
    """user -> device -> endpoint. One endpoint per (user, device)."""

    @abc.abstractmethod
    async def add(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> Endpoint | None:
        """Route the device to ``endpoint``; return the endpoint it replaces."""

    @abc.abstractmethod
    async def remove(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> None:
        """Drop the route if it still points at ``endpoint``."""

    @abc.abstractmethod
    async def lookup(self, user_id: UserId) -> dict[DeviceId, Endpoint]:
        """Return the user's online devices and their endpoints."""

    async def lookup_many(
        self, user_ids: Sequence[UserId]
    ) -> dict[UserId, dict[DeviceId, Endpoint]]:
        """Return the online devices of each of ``user_ids``; users without
        one are left out. A distributed table looks them up in one round trip."""
        found = {}
        for user_id in user_ids:
            routes = await self.lookup(user_id)
            if routes:
                found[user_id] = routes
        return found


class MemoryRoutingTable(RoutingTable):
    """Routing table in a dict, for the embedded server."""

    def __init__(self) -> None:
        self._routes: dict[UserId, dict[DeviceId, Endpoint]] = {}

    async def add(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> Endpoint | None:
        devices = self._routes.setdefault(user_id, {})
        previous = devices.get(device)
        devices[device] = endpoint
        return previous if previous != endpoint else None

    async def remove(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> None:
        devices = self._routes.get(user_id)
        if devices is None or devices.get(device) != endpoint:
            return
        del devices[device]
        if not devices:
            del self._routes[user_id]

    async def lookup(self, user_id: UserId) -> dict[DeviceId, Endpoint]:
        return self._routes.get(user_id, {})

    async def lookup_many(
        self, user_ids: Sequence[UserId]
    ) -> dict[UserId, dict[DeviceId, Endpoint]]:
        # The set intersection runs in C, so a large group with few members
        # online costs a Python step per online member, not per member.
        routes = self._routes
        return {user_id: routes[user_id] for user_id in routes.keys() & user_ids}

    def __len__(self) -> int:
        """Number of routed devices, over all users."""
        return sum(len(devices) for devices in self._routes.values())
