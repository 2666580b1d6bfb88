"""The gateway registry in Redis and the dispatcher's list built from it."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from switchboard.api.directory import DrainOutcome
from switchboard.cluster.directory import RedisDirectory, order_by_load
from switchboard.cluster.registry import GatewayRegistry, GatewayReport
from switchboard.ids import UserId
from tests.support.postgres import ROOT

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    subprocess.run(
        [str(ROOT / "scripts" / "services"), "redis"], check=True, timeout=120
    )
    prefix = f"sb_test_{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def registry(redis_prefix: str) -> AsyncIterator[GatewayRegistry]:
    prefix = f"{redis_prefix}{secrets.token_hex(2)}:"
    registry = GatewayRegistry(REDIS_URL, prefix=prefix, ttl_s=0.5)
    yield registry
    await registry.close()


def report(name: str, connections: int = 0, draining: bool = False) -> GatewayReport:
    return GatewayReport(
        name,
        tcp=f"{name}.internal:7070",
        ws=f"ws://{name}.internal:7081/v1/ws",
        connections=connections,
        by_platform={1: connections},
        users=connections,
        draining=draining,
    )


def test_report_json_round_trip() -> None:
    original = report("gw-a", connections=3, draining=True)

    assert GatewayReport.from_json(original.to_json()) == original


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b'{"name": "x"}'])
def test_invalid_report_is_rejected(data: bytes) -> None:
    with pytest.raises(ValueError, match="invalid gateway report"):
        GatewayReport.from_json(data)


async def test_reports_are_listed(registry: GatewayRegistry) -> None:
    await registry.report(report("gw-a", 2))
    await registry.report(report("gw-b", 5))

    listed = {r.name: r for r in await registry.reports()}

    assert listed == {"gw-a": report("gw-a", 2), "gw-b": report("gw-b", 5)}


async def test_report_expires_without_renewal(registry: GatewayRegistry) -> None:
    await registry.report(report("gw-dead"))
    for _ in range(6):
        await registry.report(report("gw-alive"))
        await asyncio.sleep(0.15)

    assert [r.name for r in await registry.reports()] == ["gw-alive"]


async def test_withdraw_removes_at_once(registry: GatewayRegistry) -> None:
    await registry.report(report("gw-a"))

    await registry.withdraw("gw-a")

    assert await registry.reports() == []


async def test_drain_request_reaches_gateway(registry: GatewayRegistry) -> None:
    assert await registry.report(report("gw-a")) is False
    assert await registry.request_drain("gw-a") is True
    assert await registry.report(report("gw-a")) is True
    assert await registry.request_drain("gw-unknown") is False


def test_order_by_load_skips_draining() -> None:
    reports = [
        report("busy", 9),
        report("leaving", 0, draining=True),
        report("idle", 1),
        report("middle", 4),
    ]

    assert [r.name for r in order_by_load(reports)] == ["idle", "middle", "busy"]


async def test_listing_is_ordered_by_load(registry: GatewayRegistry) -> None:
    await registry.report(report("busy", 9))
    await registry.report(report("idle", 1))
    await registry.report(report("leaving", 0, draining=True))

    listing = await RedisDirectory(registry).listing()

    assert listing == [
        {"transport": "tcp", "address": "idle.internal:7070"},
        {"transport": "ws", "url": "ws://idle.internal:7081/v1/ws"},
        {"transport": "tcp", "address": "busy.internal:7070"},
        {"transport": "ws", "url": "ws://busy.internal:7081/v1/ws"},
    ]


async def test_listing_survives_redis_failure(registry: GatewayRegistry) -> None:
    await registry.report(report("gw-a", 1))
    directory = RedisDirectory(registry)
    before = await directory.listing()
    unreachable = GatewayRegistry(
        "redis://127.0.0.1:1/0", prefix=registry.prefix, ttl_s=1
    )
    directory._registry = unreachable
    try:
        after = await directory.listing()
    finally:
        await unreachable.close()

    assert before == after
    assert len(after) == 2


async def test_drain_outcomes(registry: GatewayRegistry) -> None:
    directory = RedisDirectory(registry)
    await registry.report(report("gw-a"))

    assert await directory.drain("gw-a", force=False) is DrainOutcome.LAST_GATEWAY
    assert await directory.drain("gw-x", force=False) is DrainOutcome.NOT_FOUND

    await registry.report(report("gw-b"))
    assert await directory.drain("gw-a", force=False) is DrainOutcome.REQUESTED

    await registry.report(report("gw-a", draining=True))
    assert await directory.drain("gw-a", force=True) is DrainOutcome.ALREADY_DRAINING


def test_report_without_process_figures_is_read() -> None:
    original = report("gw-old", connections=1)
    fields = json.loads(original.to_json())
    del fields["cpu_percent"], fields["rss_bytes"]

    decoded = GatewayReport.from_json(json.dumps(fields))

    assert decoded == original
    assert decoded.cpu_percent == 0.0
    assert decoded.rss_bytes == 0


async def test_loads_carry_users_and_process_figures(
    registry: GatewayRegistry,
) -> None:
    first = report("gw-a", 2)
    first.cpu_percent, first.rss_bytes = 12.5, 50_000_000
    await registry.report(first, {UserId(1), UserId(2)})
    await registry.report(report("gw-b", 1), {UserId(2)})
    await registry.report(report("gw-c"))

    loads = {load.name: load for load in await RedisDirectory(registry).loads()}

    assert loads["gw-a"].users == {1, 2}
    assert loads["gw-b"].users == {2}
    assert loads["gw-c"].users == set()
    assert loads["gw-a"].cpu_percent == 12.5
    assert loads["gw-a"].rss_bytes == 50_000_000


async def test_report_replaces_users(registry: GatewayRegistry) -> None:
    await registry.report(report("gw-a", 2), {UserId(1), UserId(2)})
    await registry.report(report("gw-a", 1), {UserId(3)})

    assert await registry.users(["gw-a"]) == {"gw-a": {3}}

    await registry.withdraw("gw-a")
    assert await registry.users(["gw-a"]) == {"gw-a": set()}
