"""Routing tables: the same behaviour in memory and in Redis."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from switchboard.bus.base import Endpoint
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic.routing import MemoryRoutingTable, RoutingTable
from switchboard.logic.routing_redis import RedisRoutingTable
from tests.support.postgres import ROOT

REDIS_URL = "redis://127.0.0.1:6379/0"
ALICE = UserId(1)
BOB = UserId(2)
PHONE = DeviceId("phone")
LAPTOP = DeviceId("laptop")


def endpoint(gateway: str, connection: int) -> Endpoint:
    return Endpoint(gateway=gateway, connection=ConnectionId(connection))


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    """A key prefix private to this test run."""
    subprocess.run(
        [str(ROOT / "scripts" / "services"), "redis"], check=True, timeout=120
    )
    return f"sb_test_{secrets.token_hex(4)}:"


@pytest.fixture
def redis_keys(redis_prefix: str) -> Iterator[redis.Redis]:
    """A Redis client; every key under the run's prefix is deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        keys = list(client.scan_iter(match=f"{redis_prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(params=["memory", "redis"])
async def table(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[RoutingTable]:
    if request.param == "memory":
        yield MemoryRoutingTable()
        return

    request.getfixturevalue("redis_keys")
    routing = RedisRoutingTable(REDIS_URL, prefix=redis_prefix)
    try:
        yield routing
    finally:
        await routing.close()


# Behaviour of every routing table.


async def test_lookup_unknown_user_is_empty(table: RoutingTable) -> None:
    assert await table.lookup(ALICE) == {}


async def test_add_then_lookup(table: RoutingTable) -> None:
    assert await table.add(ALICE, PHONE, endpoint("g1", 7)) is None
    assert await table.add(ALICE, LAPTOP, endpoint("g2:east", 8)) is None

    assert await table.lookup(ALICE) == {
        PHONE: endpoint("g1", 7),
        LAPTOP: endpoint("g2:east", 8),
    }
    assert await table.lookup(BOB) == {}


async def test_add_returns_replaced_endpoint(table: RoutingTable) -> None:
    await table.add(ALICE, PHONE, endpoint("g1", 7))

    replaced = await table.add(ALICE, PHONE, endpoint("g2", 9))
    same = await table.add(ALICE, PHONE, endpoint("g2", 9))

    assert replaced == endpoint("g1", 7)
    assert same is None
    assert await table.lookup(ALICE) == {PHONE: endpoint("g2", 9)}


async def test_remove_only_matching_endpoint(table: RoutingTable) -> None:
    await table.add(ALICE, PHONE, endpoint("g1", 7))

    await table.remove(ALICE, PHONE, endpoint("g1", 6))
    assert await table.lookup(ALICE) == {PHONE: endpoint("g1", 7)}

    await table.remove(ALICE, PHONE, endpoint("g1", 7))
    assert await table.lookup(ALICE) == {}

    await table.remove(BOB, PHONE, endpoint("g1", 7))
    assert await table.lookup(BOB) == {}


async def test_users_are_independent(table: RoutingTable) -> None:
    await table.add(ALICE, PHONE, endpoint("g1", 1))
    await table.add(BOB, PHONE, endpoint("g1", 2))

    await table.remove(ALICE, PHONE, endpoint("g1", 1))

    assert await table.lookup(ALICE) == {}
    assert await table.lookup(BOB) == {PHONE: endpoint("g1", 2)}


async def test_lookup_many_leaves_out_offline(table: RoutingTable) -> None:
    await table.add(ALICE, PHONE, endpoint("g1", 1))
    await table.add(ALICE, LAPTOP, endpoint("g2", 2))
    await table.add(BOB, PHONE, endpoint("g1", 3))
    offline = UserId(77)

    found = await table.lookup_many([ALICE, offline, BOB])

    assert found == {
        ALICE: {PHONE: endpoint("g1", 1), LAPTOP: endpoint("g2", 2)},
        BOB: {PHONE: endpoint("g1", 3)},
    }
    assert await table.lookup_many([]) == {}


async def test_lookup_many_of_many_users(table: RoutingTable) -> None:
    users = [UserId(1000 + n) for n in range(300)]
    for n, user in enumerate(users):
        if n % 3 == 0:
            await table.add(user, PHONE, endpoint("g1", n))

    found = await table.lookup_many(users)

    assert sorted(found) == users[::3]
    assert found[users[3]] == {PHONE: endpoint("g1", 3)}


# Redis: routes follow their gateway's lease.


@pytest.fixture
async def short_lease(
    redis_prefix: str, redis_keys: redis.Redis
) -> AsyncIterator[RedisRoutingTable]:
    routing = RedisRoutingTable(REDIS_URL, prefix=redis_prefix, lease_ttl_s=0.3)
    try:
        yield routing
    finally:
        await routing.close()


async def wait_until_empty(routing: RedisRoutingTable, user_id: UserId) -> None:
    for _ in range(100):
        if not await routing.lookup(user_id):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"routes of user {user_id} did not expire")


async def test_routes_expire_with_lease(
    short_lease: RedisRoutingTable, redis_keys: redis.Redis
) -> None:
    await short_lease.add(ALICE, PHONE, endpoint("dead", 1))
    await short_lease.add(ALICE, LAPTOP, endpoint("alive", 2))

    for _ in range(8):  # renew the live gateway for well past one TTL
        await short_lease.renew_lease("alive")
        await asyncio.sleep(0.1)

    assert await short_lease.lookup(ALICE) == {LAPTOP: endpoint("alive", 2)}
    # The dead route was deleted, not just hidden.
    stored = redis_keys.hgetall(f"{short_lease.prefix}routes:{ALICE}")
    assert stored == {b"laptop": b"2:alive"}


async def test_release_lease_drops_routes_at_once(
    short_lease: RedisRoutingTable,
) -> None:
    await short_lease.renew_lease("g1")
    await short_lease.add(ALICE, PHONE, endpoint("g1", 1))
    await short_lease.add(BOB, PHONE, endpoint("g1", 2))

    await short_lease.release_lease("g1")

    assert await short_lease.lookup(ALICE) == {}
    assert await short_lease.lookup(BOB) == {}


async def test_replacing_dead_route_returns_none(
    short_lease: RedisRoutingTable,
) -> None:
    await short_lease.add(ALICE, PHONE, endpoint("old", 1))
    await wait_until_empty(short_lease, ALICE)
    await short_lease.add(ALICE, PHONE, endpoint("old", 1))
    await asyncio.sleep(0.5)  # the lease of "old" has expired again

    replaced = await short_lease.add(ALICE, PHONE, endpoint("new", 2))

    assert replaced is None
    assert await short_lease.lookup(ALICE) == {PHONE: endpoint("new", 2)}


async def test_tables_share_routes(redis_prefix: str, redis_keys: redis.Redis) -> None:
    first = RedisRoutingTable(REDIS_URL, prefix=redis_prefix)
    second = RedisRoutingTable(REDIS_URL, prefix=redis_prefix)
    try:
        await first.add(ALICE, PHONE, endpoint("g1", 1))
        assert await second.lookup(ALICE) == {PHONE: endpoint("g1", 1)}
        await second.remove(ALICE, PHONE, endpoint("g1", 1))
        assert await first.lookup(ALICE) == {}
    finally:
        await first.close()
        await second.close()


def test_invalid_lease_ttl_raises() -> None:
    with pytest.raises(ValueError, match="invalid lease_ttl_s 0"):
        RedisRoutingTable(REDIS_URL, lease_ttl_s=0)


async def test_renew_lease_reports_missing_lease(
    short_lease: RedisRoutingTable,
) -> None:
    assert await short_lease.renew_lease("g1") is False
    assert await short_lease.renew_lease("g1") is True

    await short_lease.release_lease("g1")
    assert await short_lease.renew_lease("g1") is False

    # A lease that a Connect started after a loss does not count either.
    await short_lease.release_lease("g1")
    await short_lease.add(ALICE, PHONE, endpoint("g1", 1))
    assert await short_lease.renew_lease("g1") is False


async def test_restore_keeps_newer_live_routes(
    short_lease: RedisRoutingTable,
) -> None:
    await short_lease.add(ALICE, LAPTOP, endpoint("gone", 6))
    await asyncio.sleep(0.5)  # the lease of "gone" has expired
    await short_lease.renew_lease("g1")
    await short_lease.add(ALICE, PHONE, endpoint("g2", 5))  # moved to g2

    await short_lease.restore(
        [
            (ALICE, PHONE, endpoint("g1", 1)),
            (ALICE, LAPTOP, endpoint("g1", 2)),
            (BOB, PHONE, endpoint("g1", 3)),
        ]
    )

    await short_lease.renew_lease("g1")
    await short_lease.renew_lease("g2")
    assert await short_lease.lookup(ALICE) == {
        PHONE: endpoint("g2", 5),
        LAPTOP: endpoint("g1", 2),
    }
    assert await short_lease.lookup(BOB) == {PHONE: endpoint("g1", 3)}


async def test_sweep_deletes_routes_of_dead_gateways(
    short_lease: RedisRoutingTable, redis_keys: redis.Redis
) -> None:
    await short_lease.add(ALICE, PHONE, endpoint("dead", 1))
    await short_lease.add(BOB, PHONE, endpoint("dead", 2))
    await short_lease.add(BOB, LAPTOP, endpoint("dead", 3))
    await short_lease.add(ALICE, LAPTOP, endpoint("alive", 4))
    # Bob's laptop moved to the live gateway before the dead one expired.
    await short_lease.add(BOB, LAPTOP, endpoint("alive", 5))

    assert await short_lease.sweep() == 0  # every lease still exists
    for _ in range(6):  # past the TTL of "dead", renewing "alive"
        await short_lease.renew_lease("alive")
        await asyncio.sleep(0.1)
    assert await short_lease.sweep() == 3

    # Deleted from Redis without any lookup, and the live routes stay.
    prefix = short_lease.prefix
    assert redis_keys.hgetall(f"{prefix}routes:{ALICE}") == {b"laptop": b"4:alive"}
    assert redis_keys.hgetall(f"{prefix}routes:{BOB}") == {b"laptop": b"5:alive"}
    assert redis_keys.smembers(f"{prefix}routed-gateways") == {b"alive"}
    assert await short_lease.sweep() == 0


async def test_removed_route_leaves_gateway_set(
    short_lease: RedisRoutingTable, redis_keys: redis.Redis
) -> None:
    await short_lease.add(ALICE, PHONE, endpoint("g1", 1))
    await short_lease.add(ALICE, LAPTOP, endpoint("g1", 2))

    await short_lease.remove(ALICE, PHONE, endpoint("g1", 1))

    members = redis_keys.smembers(f"{short_lease.prefix}gateway-routes:g1")
    assert members == {f"{ALICE}:laptop".encode()}
