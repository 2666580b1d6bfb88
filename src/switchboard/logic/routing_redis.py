"""Routing table in Redis, shared by the processes of a cluster.

Keys, under a configurable prefix:

- ``routes:<user id>``: a hash of device -> ``<connection>:<gateway>``;
- ``lease:<gateway>``: present while the gateway is alive. It expires unless
  the gateway renews it, and a route counts only while its gateway's lease
  exists, so the routes of a crashed gateway vanish within one lease TTL;
- ``gateway-routes:<gateway>``: a set of ``<user id>:<device>``, the routes
  stored for the gateway, so that :meth:`RedisRoutingTable.sweep` can
  delete them once the lease is gone;
- ``routed-gateways``: a set of the gateways that have such a set.

``add()`` starts a lease that does not exist yet. A gateway process then
calls ``renew_lease()`` more often than the TTL and ``release_lease()`` when
it stops. Each operation is one Lua script, so it is atomic in Redis.

Routes of a dead gateway stop counting when its lease ends. They are
deleted when their user is next looked up or by the next ``sweep()``, which
a cluster's dispatcher runs every ``lease_ttl / 3`` seconds.

NOTE: the scripts build lease keys from the routes they read, which Redis
Cluster does not allow, so this table needs a single Redis (with replicas).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as redis

from switchboard.bus.base import Endpoint
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic.routing import RoutingTable

__all__ = ["RedisRoutingTable"]

logger = logging.getLogger("switchboard.logic")

DEFAULT_LEASE_TTL_S: Final = 30.0
SWEEP_BATCH: Final = 500
"""Routes one sweep script deletes at most, so Redis serves other clients
between batches."""
_RENEWED: Final = b"renewed"
"""Value of a lease key that renew_lease() wrote; add() writes '1'."""
REDIS_TIMEOUT_S: Final = 2.0
"""Time one Redis call may take before it fails with a TimeoutError."""

# KEYS[1] = routes hash. ARGV = device, route, lease key of the route,
# lease TTL in ms, prefix of lease keys, gateway-routes key of the route,
# its member, routed-gateways key, gateway. Returns the replaced live route
# or nil.
_ADD: Final = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', ARGV[3], '1', 'PX', ARGV[4], 'NX')
redis.call('SADD', ARGV[6], ARGV[7])
redis.call('SADD', ARGV[8], ARGV[9])
if not old or old == ARGV[2] then return false end
local gateway = string.sub(old, string.find(old, ':', 1, true) + 1)
if redis.call('EXISTS', ARGV[5] .. gateway) == 1 then return old end
return false
"""

# KEYS[1] = routes hash. ARGV = device, route, gateway-routes key of the
# route, its member. Deletes the route if unchanged.
_REMOVE: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', ARGV[3], ARGV[4])
end
return 0
"""

# KEYS[1] = routes hash. ARGV[1] = prefix of lease keys. Returns the live
# routes as a flat device, route list and deletes the routes of dead gateways.
_LOOKUP: Final = """
local entries = redis.call('HGETALL', KEYS[1])
local live = {}
local alive = {}
for i = 1, #entries, 2 do
  local route = entries[i + 1]
  local gateway = string.sub(route, string.find(route, ':', 1, true) + 1)
  if alive[gateway] == nil then
    alive[gateway] = redis.call('EXISTS', ARGV[1] .. gateway) == 1
  end
  if alive[gateway] then
    table.insert(live, entries[i])
    table.insert(live, route)
  else
    redis.call('HDEL', KEYS[1], entries[i])
  end
end
return live
"""


# KEYS[1] = routes hash. ARGV = device, route, prefix of lease keys,
# gateway-routes key of the route, its member, routed-gateways key, gateway.
# Sets the route unless the device has another one whose gateway's lease
# exists.
_RESTORE: Final = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old ~= ARGV[2] then
  local gateway = string.sub(old, string.find(old, ':', 1, true) + 1)
  if redis.call('EXISTS', ARGV[3] .. gateway) == 1 then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', ARGV[4], ARGV[5])
redis.call('SADD', ARGV[6], ARGV[7])
return 1
"""

# KEYS[1] = lease key, KEYS[2] = gateway-routes key. ARGV = prefix of routes
# keys, gateway, batch size. Unless the lease exists, deletes up to a batch
# of the gateway's routes that still point to it. Returns the number of
# members taken from the set, -1 while the lease exists.
_SWEEP: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local members = redis.call('SPOP', KEYS[2], tonumber(ARGV[3]))
for _, member in ipairs(members) do
  local split = string.find(member, ':', 1, true)
  local routes = ARGV[1] .. string.sub(member, 1, split - 1)
  local device = string.sub(member, split + 1)
  local route = redis.call('HGET', routes, device)
  if route and string.sub(route, string.find(route, ':', 1, true) + 1) == ARGV[2]
  then
    redis.call('HDEL', routes, device)
  end
end
return #members
"""


class RedisRoutingTable(RoutingTable):
    """user -> device -> endpoint in Redis, with routes tied to gateway leases.

    ``url`` is a Redis URL such as ``redis://127.0.0.1:6379/0``. ``prefix``
    starts every key, so several deployments (or test runs) can share one
    Redis. ``lease_ttl_s`` is how long a gateway's routes outlive its last
    lease renewal.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "switchboard:",
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> None:
        if lease_ttl_s <= 0:
            raise ValueError(f"invalid lease_ttl_s {lease_ttl_s}: must be positive")

        self.prefix = prefix
        self.lease_ttl_s = lease_ttl_s
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self._add = self._client.register_script(_ADD)
        self._remove = self._client.register_script(_REMOVE)
        self._lookup = self._client.register_script(_LOOKUP)
        self._restore = self._client.register_script(_RESTORE)
        self._sweep = self._client.register_script(_SWEEP)

    async def close(self) -> None:
        await self._client.aclose()

    # RoutingTable.

    async def add(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> Endpoint | None:
        replaced: Any = await self._add(
            keys=[self._routes_key(user_id)],
            args=[
                device,
                _encode(endpoint),
                self._lease_key(endpoint.gateway),
                self._lease_ttl_ms,
                self._lease_key(""),
                self._gateway_routes_key(endpoint.gateway),
                _member(user_id, device),
                self._routed_gateways_key,
                endpoint.gateway,
            ],
        )
        return None if not replaced else _decode(replaced)

    async def remove(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> None:
        await self._remove(
            keys=[self._routes_key(user_id)],
            args=[
                device,
                _encode(endpoint),
                self._gateway_routes_key(endpoint.gateway),
                _member(user_id, device),
            ],
        )

    async def lookup(self, user_id: UserId) -> dict[DeviceId, Endpoint]:
        flat: list[bytes] = await self._lookup(
            keys=[self._routes_key(user_id)], args=[self._lease_key("")]
        )
        return _routes_of(flat)

    async def lookup_many(
        self, user_ids: Sequence[UserId]
    ) -> dict[UserId, dict[DeviceId, Endpoint]]:
        # One pipeline: the lookups of all users in one round trip.
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                await self._lookup(
                    keys=[self._routes_key(user_id)],
                    args=[self._lease_key("")],
                    client=pipe,
                )
            results: list[list[bytes]] = await pipe.execute()
        found = {}
        for user_id, flat in zip(user_ids, results, strict=True):
            if flat:
                found[user_id] = _routes_of(flat)
        return found

    # Gateway leases.

    async def renew_lease(self, gateway: str) -> bool:
        """Start or extend the gateway's lease by ``lease_ttl_s``.

        Returns whether the lease existed since an earlier renewal. When it
        did not, the gateway's routes may be gone (an expired lease, or a
        Redis that lost its data), and the gateway should restore() them. A
        lease that add() started does not count, because add() starts one
        after such a loss too.
        """
        previous = await self._client.set(
            self._lease_key(gateway), _RENEWED, px=self._lease_ttl_ms, get=True
        )
        return previous == _RENEWED

    async def restore(self, routes: list[tuple[UserId, DeviceId, Endpoint]]) -> None:
        """Add each (user, device, endpoint) route, unless the device has a
        route to another live gateway.

        A gateway calls this with all its authenticated connections after
        Redis was unreachable or lost its data. A device that connected to
        another gateway meanwhile keeps that newer route.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id, device, endpoint in routes:
                await self._restore(
                    keys=[self._routes_key(user_id)],
                    args=[
                        device,
                        _encode(endpoint),
                        self._lease_key(""),
                        self._gateway_routes_key(endpoint.gateway),
                        _member(user_id, device),
                        self._routed_gateways_key,
                        endpoint.gateway,
                    ],
                    client=pipe,
                )
            await pipe.execute()

    async def release_lease(self, gateway: str) -> None:
        """End the lease, so every route to the gateway stops counting at once."""
        await self._client.delete(self._lease_key(gateway))
        logger.info("released the routing lease of gateway %s", gateway)

    async def sweep(self) -> int:
        """Delete the routes of every gateway whose lease is gone.

        Returns the number of routes examined. Safe to run from several
        processes at once. A live gateway whose lease lapsed (a long pause)
        and whose routes were swept stores them again at its next renewal,
        because ``renew_lease()`` then returns False.
        """
        examined = 0
        members = await self._client.smembers(self._routed_gateways_key)
        for member in sorted(members):
            gateway = member.decode() if isinstance(member, bytes) else member
            while True:
                taken = await self._sweep(
                    keys=[
                        self._lease_key(gateway),
                        self._gateway_routes_key(gateway),
                    ],
                    args=[self._routes_key_prefix, gateway, SWEEP_BATCH],
                )
                if taken < 0:
                    break
                examined += taken
                if taken < SWEEP_BATCH:
                    await self._client.srem(self._routed_gateways_key, gateway)
                    logger.info(
                        "swept the routes of gateway %s, whose lease is gone", gateway
                    )
                    break
        return examined

    @property
    def _lease_ttl_ms(self) -> int:
        return max(1, round(self.lease_ttl_s * 1000))

    def _routes_key(self, user_id: UserId) -> str:
        return f"{self._routes_key_prefix}{user_id}"

    @property
    def _routes_key_prefix(self) -> str:
        return f"{self.prefix}routes:"

    def _gateway_routes_key(self, gateway: str) -> str:
        return f"{self.prefix}gateway-routes:{gateway}"

    @property
    def _routed_gateways_key(self) -> str:
        return f"{self.prefix}routed-gateways"

    def _lease_key(self, gateway: str) -> str:
        return f"{self.prefix}lease:{gateway}"


def _member(user_id: UserId, device: DeviceId) -> str:
    """Return the member of a gateway-routes set for the device's route."""
    return f"{user_id}:{device}"


def _encode(endpoint: Endpoint) -> str:
    # The connection number comes first, because a gateway name may contain ':'.
    return f"{endpoint.connection}:{endpoint.gateway}"


def _decode(route: bytes) -> Endpoint:
    connection, _, gateway = route.decode().partition(":")
    return Endpoint(gateway=gateway, connection=ConnectionId(int(connection)))


def _routes_of(flat: list[bytes]) -> dict[DeviceId, Endpoint]:
    """Return the routes of a lookup's reply: device, endpoint, device, ..."""
    return {
        DeviceId(flat[i].decode()): _decode(flat[i + 1]) for i in range(0, len(flat), 2)
    }
