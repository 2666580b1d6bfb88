"""The gateway registry in Redis: which gateways are up, where, and how loaded.

Keys, under the deployment's prefix:

- ``gateways``: a set of gateway names;
- ``gateway:<name>``: the gateway's latest report as JSON. It expires
  ``ttl_s`` after the report, so a crashed gateway drops out of the list;
- ``drain:<name>``: present when an admin asked the gateway to drain;
- ``gateway-users:<name>``: a set of the ids of users with an authenticated
  connection on the gateway, rewritten with each report and expiring with
  it, so that the statistics count users on several gateways once.

A gateway reports every ``ttl_s / 3`` seconds; the dispatcher reads every
report for each ``GET /v1/gateways``. Names whose report expired are removed
from the set when the dispatcher next reads it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as redis

__all__ = ["GatewayRegistry", "GatewayReport"]

logger = logging.getLogger("switchboard.cluster")

DRAIN_REQUEST_TTL_S: Final = 300
"""Lifetime of a drain request that no gateway picks up, in seconds."""
USERS_BATCH: Final = 10_000
"""User ids per SADD command of a report."""


@dataclass(slots=True)
class GatewayReport:
    """One gateway's addresses and load, as it last reported them."""

    name: str
    tcp: str
    """``host:port`` for TCP clients."""
    ws: str
    """WebSocket URL."""
    connections: int = 0
    """Authenticated connections."""
    by_platform: dict[int, int] = field(default_factory=dict)
    users: int = 0
    """Users with at least one authenticated connection there."""
    draining: bool = False
    cpu_percent: float = 0.0
    """Share of one core the gateway's process used since its last report."""
    rss_bytes: int = 0
    """Resident set size of the gateway's process."""

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "name": self.name,
                "tcp": self.tcp,
                "ws": self.ws,
                "connections": self.connections,
                "by_platform": {str(k): v for k, v in self.by_platform.items()},
                "users": self.users,
                "draining": self.draining,
                "cpu_percent": self.cpu_percent,
                "rss_bytes": self.rss_bytes,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> GatewayReport:
        """Decode a report; raise ValueError if ``data`` is not one."""
        try:
            fields: dict[str, Any] = json.loads(data)
            return cls(
                name=str(fields["name"]),
                tcp=str(fields["tcp"]),
                ws=str(fields["ws"]),
                connections=int(fields["connections"]),
                by_platform={int(k): int(v) for k, v in fields["by_platform"].items()},
                users=int(fields["users"]),
                draining=bool(fields["draining"]),
                # Absent from the reports of gateways older than these fields.
                cpu_percent=float(fields.get("cpu_percent", 0.0)),
                rss_bytes=int(fields.get("rss_bytes", 0)),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"invalid gateway report: {exc!r}") from exc


class GatewayRegistry:
    """Reports of live gateways in Redis at ``url``, keys under ``prefix``."""

    def __init__(self, url: str, *, prefix: str, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError(f"invalid ttl_s {ttl_s}: must be positive")
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=5
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def report(self, report: GatewayReport, users: Collection[int] = ()) -> bool:
        """Store ``report`` and the gateway's ``users`` for ``ttl_s``.

        Returns whether a drain was requested.
        """
        users_key = self._users_key(report.name)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._report_key(report.name), report.to_json(), px=self._ttl_ms)
            pipe.sadd(self._names_key, report.name)
            pipe.exists(self._drain_key(report.name))
            pipe.delete(users_key)
            # NOTE: rewrites every user id with each report, which costs
            # Redis O(users) every ttl_s / 3 seconds. An incremental update
            # would need the gateway to track changes since its last report.
            ids = list(users)
            for start in range(0, len(ids), USERS_BATCH):
                pipe.sadd(users_key, *ids[start : start + USERS_BATCH])
            pipe.pexpire(users_key, self._ttl_ms)
            results = await pipe.execute()
        return bool(results[2])

    async def withdraw(self, name: str) -> None:
        """Remove the gateway at once, as it stops."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(
                self._report_key(name), self._drain_key(name), self._users_key(name)
            )
            pipe.srem(self._names_key, name)
            await pipe.execute()

    async def users(self, names: Collection[str]) -> dict[str, set[int]]:
        """Return the ids of the users on each gateway in ``names``."""
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.smembers(self._users_key(name))
            results = await pipe.execute()
        return {
            name: {int(member) for member in members}
            for name, members in zip(names, results, strict=True)
        }

    async def reports(self) -> list[GatewayReport]:
        """Return the reports of live gateways, in no particular order."""
        members = await self._client.smembers(self._names_key)
        names = sorted(_text(member) for member in members)
        if not names:
            return []
        values = await self._client.mget([self._report_key(n) for n in names])
        reports = []
        expired = []
        for name, value in zip(names, values, strict=True):
            if value is None:
                expired.append(name)
                continue
            try:
                reports.append(GatewayReport.from_json(value))
            except ValueError as exc:
                logger.error("ignored the report of gateway %s: %s", name, exc)
        if expired:
            await self._client.srem(self._names_key, *expired)
        return reports

    async def request_drain(self, name: str) -> bool:
        """Ask gateway ``name`` to drain; return False if it is not registered."""
        if not await self._client.exists(self._report_key(name)):
            return False
        await self._client.set(self._drain_key(name), b"1", ex=DRAIN_REQUEST_TTL_S)
        return True

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl_s * 1000))

    @property
    def _names_key(self) -> str:
        return f"{self.prefix}gateways"

    def _report_key(self, name: str) -> str:
        return f"{self.prefix}gateway:{name}"

    def _drain_key(self, name: str) -> str:
        return f"{self.prefix}drain:{name}"

    def _users_key(self, name: str) -> str:
        return f"{self.prefix}gateway-users:{name}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
