"""The Redis routing table, degraded instead of failing while Redis is down.

While Redis is unreachable:

- ``lookup`` returns one broadcast endpoint (``bus.base.BROADCAST``) for the
  user, so a delivery goes to every gateway and each gateway writes it to
  the user's connections it holds. Messages keep flowing, at the cost of
  one delivery per gateway instead of one per device.
- ``add`` stores nothing and returns None, so a Connect still succeeds, but
  an older connection of the same device on another gateway is not closed.
- ``remove`` stores nothing.

Each gateway restores the routes of its connections once it reaches Redis
again (``RedisRoutingTable.restore``), so deliveries go back to single
gateways by themselves. After a failed call, Redis is tried again only after
``retry_after_s``, so calls during an outage cost no connection attempts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Final

from redis.exceptions import RedisError

from switchboard.bus.base import BROADCAST, Endpoint
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic.routing import RoutingTable
from switchboard.logic.routing_redis import RedisRoutingTable
from switchboard.logs import RateLimitedLog

__all__ = ["ResilientRoutingTable", "broadcast_routes"]

logger = logging.getLogger("switchboard.cluster")

REDIS_ERRORS: Final = (RedisError, OSError)
"""Exceptions of a call to an unreachable or failing Redis. TimeoutError is
an OSError."""


def broadcast_routes(user_id: UserId) -> dict[DeviceId, Endpoint]:
    """Return the routes that reach ``user_id`` through every gateway."""
    return {DeviceId(BROADCAST): Endpoint(BROADCAST, ConnectionId(user_id))}


class ResilientRoutingTable(RoutingTable):
    """``table``, falling back as the module describes while Redis fails."""

    def __init__(self, table: RedisRoutingTable, *, retry_after_s: float = 1.0) -> None:
        self.table = table
        self._retry_after_s = retry_after_s
        self._failed_at: float | None = None
        self._log = RateLimitedLog(logger)

    @property
    def degraded(self) -> bool:
        """Whether the last call to Redis failed."""
        return self._failed_at is not None

    async def add(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> Endpoint | None:
        if self._waiting():
            return None
        try:
            replaced = await self.table.add(user_id, device, endpoint)
        except REDIS_ERRORS as exc:
            self._failed("add a route", exc)
            return None
        self._succeeded()
        return replaced

    async def remove(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> None:
        if self._waiting():
            return
        try:
            await self.table.remove(user_id, device, endpoint)
        except REDIS_ERRORS as exc:
            self._failed("remove a route", exc)
            return
        self._succeeded()

    async def lookup(self, user_id: UserId) -> dict[DeviceId, Endpoint]:
        if self._waiting():
            return broadcast_routes(user_id)
        try:
            routes = await self.table.lookup(user_id)
        except REDIS_ERRORS as exc:
            self._failed("look up routes", exc)
            return broadcast_routes(user_id)
        self._succeeded()
        return routes

    async def lookup_many(
        self, user_ids: Sequence[UserId]
    ) -> dict[UserId, dict[DeviceId, Endpoint]]:
        if self._waiting():
            return {user_id: broadcast_routes(user_id) for user_id in user_ids}
        try:
            found = await self.table.lookup_many(user_ids)
        except REDIS_ERRORS as exc:
            self._failed("look up routes", exc)
            return {user_id: broadcast_routes(user_id) for user_id in user_ids}
        self._succeeded()
        return found

    async def close(self) -> None:
        await self.table.close()

    def _waiting(self) -> bool:
        failed_at = self._failed_at
        return failed_at is not None and time.monotonic() - failed_at < (
            self._retry_after_s
        )

    def _failed(self, action: str, exc: BaseException) -> None:
        if self._failed_at is None:
            logger.warning(
                "Redis failed to %s; delivering through every gateway until it"
                " is back: %r",
                action,
                exc,
            )
        else:
            self._log.warning("redis", "Redis still fails to %s: %r", action, exc)
        self._failed_at = time.monotonic()

    def _succeeded(self) -> None:
        if self._failed_at is not None:
            logger.info("Redis is reachable again; routing through it")
            self._failed_at = None
