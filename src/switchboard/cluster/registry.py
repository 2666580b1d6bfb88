"""The gateway registry in Redis: which gateways are up, where, and how loaded.

Keys, under the deployment's prefix:

- ``gateways``: a set of gateway names;
- ``gateway:<name>``: the gateway's latest report as JSON. It expires
  ``ttl_s`` after the report, so a crashed gateway drops out of the list;
- ``drain:<name>``: present when an admin asked the gateway to drain.

A gateway reports every ``ttl_s / 3`` seconds; the dispatcher reads every
report for each ``GET /v1/gateways``. Names whose report expired are removed
from the set when the dispatcher next reads it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as redis

__all__ = ["GatewayRegistry", "GatewayReport"]

logger = logging.getLogger("switchboard.cluster")

DRAIN_REQUEST_TTL_S: Final = 300
"""Lifetime of a drain request that no gateway picks up, in seconds."""


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

    async def report(self, report: GatewayReport) -> bool:
        """Store ``report`` for ``ttl_s``; return whether a drain was requested."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._report_key(report.name), report.to_json(), px=self._ttl_ms)
            pipe.sadd(self._names_key, report.name)
            pipe.exists(self._drain_key(report.name))
            results = await pipe.execute()
        return bool(results[2])

    async def withdraw(self, name: str) -> None:
        """Remove the gateway at once, as it stops."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(self._report_key(name), self._drain_key(name))
            pipe.srem(self._names_key, name)
            await pipe.execute()

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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
