"""Statistics counters summed over processes in Redis."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.exceptions import RedisError

from switchboard.cluster.counters import RedisCounters
from switchboard.logic.stats import SharedCountersError, Stats
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
async def pair(redis_prefix: str) -> AsyncIterator[tuple[RedisCounters, ...]]:
    """Two processes' counters that share one hash."""
    prefix = f"{redis_prefix}{secrets.token_hex(2)}:"
    counters = (
        RedisCounters(REDIS_URL, prefix=prefix),
        RedisCounters(REDIS_URL, prefix=prefix),
    )
    yield counters
    for item in counters:
        await item.close()


async def test_totals_sum_two_processes(pair: tuple[RedisCounters, ...]) -> None:
    first, second = pair
    first_stats, second_stats = Stats(), Stats()
    first_stats.messages_sent = 3
    first_stats.syncs = 2
    first_stats.count_error("unknown_recipient")
    second_stats.messages_sent = 4
    second_stats.messages_delivered = 5
    second_stats.count_error("unknown_recipient")
    second_stats.count_error("rate_limited")

    await first.flush(first_stats)
    totals = await second.totals(second_stats)

    assert totals.messages_sent == 7
    assert totals.messages_delivered == 5
    assert totals.syncs == 2
    assert totals.errors == {"unknown_recipient": 2, "rate_limited": 1}


async def test_flush_adds_only_new_counts(pair: tuple[RedisCounters, ...]) -> None:
    first, second = pair
    stats = Stats()
    stats.messages_sent = 2
    await first.flush(stats)
    await first.flush(stats)
    stats.messages_sent = 5
    await first.flush(stats)

    totals = await second.totals(Stats())

    assert totals.messages_sent == 5


async def test_unreachable_redis_raises() -> None:
    # Nothing listens on port 1, so every call fails.
    counters = RedisCounters("redis://127.0.0.1:1/0", prefix="unreachable:")
    stats = Stats()
    stats.messages_sent = 1
    try:
        with pytest.raises(SharedCountersError, match="reading the counters"):
            await counters.totals(stats)
        with pytest.raises(RedisError):
            await counters.flush(stats)
    finally:
        await counters.close()
