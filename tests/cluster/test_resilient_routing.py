"""The routing table of a cluster while Redis is unreachable, and after."""

from __future__ import annotations

import asyncio
from pathlib import Path

from switchboard.bus.base import BROADCAST, Endpoint
from switchboard.cluster.routing import ResilientRoutingTable, broadcast_routes
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic.routing_redis import RedisRoutingTable
from tests.support.redis_server import RedisServer

PHONE = DeviceId("phone")
ROUTE = Endpoint("g1", ConnectionId(3))


async def test_unreachable_redis_falls_back_then_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    table = ResilientRoutingTable(
        RedisRoutingTable(server.url, prefix="t:"), retry_after_s=0.2
    )
    try:
        # No server yet: every call degrades instead of raising.
        assert await table.add(UserId(7), PHONE, ROUTE) is None
        await table.remove(UserId(7), PHONE, ROUTE)
        assert await table.lookup(UserId(7)) == {
            DeviceId(BROADCAST): Endpoint(BROADCAST, ConnectionId(7))
        }
        assert table.degraded
        assert await table.lookup_many([UserId(7), UserId(8)]) == {
            UserId(7): broadcast_routes(UserId(7)),
            UserId(8): broadcast_routes(UserId(8)),
        }

        await asyncio.to_thread(server.start)
        await asyncio.sleep(0.3)  # past retry_after_s
        assert await table.add(UserId(7), PHONE, ROUTE) is None
        assert await table.lookup(UserId(7)) == {PHONE: ROUTE}
        assert not table.degraded
        assert await table.lookup_many([UserId(7), UserId(8)]) == {
            UserId(7): {PHONE: ROUTE}
        }
    finally:
        await table.close()
        server.kill()


def test_broadcast_routes_carry_the_user() -> None:
    [(device, endpoint)] = broadcast_routes(UserId(42)).items()

    assert device == BROADCAST
    assert endpoint.gateway == BROADCAST
    assert endpoint.connection == 42
