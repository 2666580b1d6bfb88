"""Statistics counters summed over a cluster, in one Redis hash.

Every logic worker and dispatcher counts its own events in its
:class:`~switchboard.logic.stats.Stats`. Each adds what it counted since its
last flush to the hash ``<prefix>stats:counters`` with ``HINCRBY``, in one
``MULTI`` transaction: logic workers every ``lease_ttl / 3`` seconds, the
dispatcher before it reports the statistics. The dispatcher reports the
hash's totals, so they cover every process, including ones that stopped
since. Counts a process made after its last flush are lost if it crashes.

Fields: ``messages_sent``, ``messages_delivered``, ``syncs`` and
``error:<code>`` for each error code.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import redis.asyncio as redis
from redis.exceptions import RedisError

from switchboard.logic.stats import (
    CounterTotals,
    SharedCounters,
    SharedCountersError,
    Stats,
)
from switchboard.logs import RateLimitedLog

__all__ = ["RedisCounters", "flush_periodically"]

logger = logging.getLogger("switchboard.cluster")

ERROR_FIELD_PREFIX: Final = "error:"
REDIS_TIMEOUT_S: Final = 2.0


class RedisCounters(SharedCounters):
    """The cluster's counters in Redis at ``url``, under ``prefix``."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self.key = f"{prefix}stats:counters"
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._flushed = CounterTotals()
        """The counts of this process already added to the hash."""

    async def close(self) -> None:
        await self._client.aclose()

    async def flush(self, stats: Stats) -> None:
        """Add what ``stats`` counted since the last successful flush.

        Raises RedisError or OSError when Redis fails; nothing is then
        added, and the next flush adds these counts too.
        """
        counts = stats.own_counters()
        increments = _difference(counts, self._flushed)
        if increments:
            async with self._client.pipeline(transaction=True) as pipe:
                for name, amount in increments.items():
                    pipe.hincrby(self.key, name, amount)
                await pipe.execute()
        self._flushed = counts

    async def totals(self, stats: Stats) -> CounterTotals:
        try:
            await self.flush(stats)
            fields = await self._client.hgetall(self.key)
        except (RedisError, OSError) as exc:
            raise SharedCountersError(
                f"reading the counters in Redis failed: {exc!r}"
            ) from exc
        totals = CounterTotals()
        for raw_name, raw_value in fields.items():
            name = _text(raw_name)
            value = int(raw_value)
            if name.startswith(ERROR_FIELD_PREFIX):
                totals.errors[name.removeprefix(ERROR_FIELD_PREFIX)] = value
            elif name == "messages_sent":
                totals.messages_sent = value
            elif name == "messages_delivered":
                totals.messages_delivered = value
            elif name == "syncs":
                totals.syncs = value
        return totals


def _difference(counts: CounterTotals, flushed: CounterTotals) -> dict[str, int]:
    """Return the hash fields to raise, and by how much, leaving out zeros."""
    increments = {
        "messages_sent": counts.messages_sent - flushed.messages_sent,
        "messages_delivered": counts.messages_delivered - flushed.messages_delivered,
        "syncs": counts.syncs - flushed.syncs,
    }
    for code, count in counts.errors.items():
        increments[ERROR_FIELD_PREFIX + code] = count - flushed.errors.get(code, 0)
    return {name: amount for name, amount in increments.items() if amount}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def flush_periodically(
    counters: RedisCounters, stats: Stats, interval: float
) -> None:
    """Flush ``stats`` every ``interval`` seconds until cancelled."""
    failures = RateLimitedLog(logger)
    while True:
        await asyncio.sleep(interval)
        try:
            await counters.flush(stats)
        except (RedisError, OSError) as exc:
            failures.warning(
                "flush",
                "adding the statistics counters to Redis failed, retrying in"
                " %.1f s: %r",
                interval,
                exc,
            )
