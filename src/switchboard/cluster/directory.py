"""The dispatcher's view of the gateways: the registry in Redis, by live load."""

from __future__ import annotations

import logging
import random

from redis.exceptions import RedisError

from switchboard.api.directory import DrainOutcome, GatewayDirectory
from switchboard.bus.base import GatewayLoad
from switchboard.cluster.registry import GatewayRegistry, GatewayReport
from switchboard.ids import UserId
from switchboard.logs import RateLimitedLog

__all__ = ["RedisDirectory", "order_by_load"]

logger = logging.getLogger("switchboard.cluster")


def order_by_load(reports: list[GatewayReport]) -> list[GatewayReport]:
    """Return the gateways that accept clients, least connections first.

    Gateways with equal counts come in random order, so that clients that
    ask at the same moment spread over them.
    """
    accepting = [report for report in reports if not report.draining]
    random.shuffle(accepting)
    return sorted(accepting, key=lambda report: report.connections)


class RedisDirectory(GatewayDirectory):
    """Gateways as they report themselves in the registry.

    When Redis fails, the last list read is served again, without gateways
    that were draining, so clients can still connect. It is logged once per
    10 seconds.
    """

    def __init__(self, registry: GatewayRegistry) -> None:
        self._registry = registry
        self._last: list[GatewayReport] = []
        self._log = RateLimitedLog(logger)

    async def listing(self) -> list[dict[str, str]]:
        entries: list[dict[str, str]] = []
        for report in order_by_load(await self._reports()):
            entries.append({"transport": "tcp", "address": report.tcp})
            entries.append({"transport": "ws", "url": report.ws})
        return entries

    async def loads(self) -> list[GatewayLoad]:
        reports = await self._reports()
        users = await self._users([report.name for report in reports])
        return [
            GatewayLoad(
                report.name,
                report.tcp,
                dict(report.by_platform),
                {UserId(user) for user in users.get(report.name, ())},
                report.draining,
                cpu_percent=report.cpu_percent,
                rss_bytes=report.rss_bytes,
            )
            for report in reports
        ]

    async def _users(self, names: list[str]) -> dict[str, set[int]]:
        """Return each gateway's user ids; none while Redis fails."""
        try:
            return await self._registry.users(names)
        except (RedisError, OSError) as exc:
            self._log.warning(
                "users",
                "reading the gateways' users failed; counting no active users: %r",
                exc,
            )
            return {}

    async def drain(self, name: str, *, force: bool) -> DrainOutcome:
        reports = {report.name: report for report in await self._registry.reports()}
        target = reports.get(name)
        if target is None:
            return DrainOutcome.NOT_FOUND
        if target.draining:
            return DrainOutcome.ALREADY_DRAINING
        others = [r for r in reports.values() if r.name != name and not r.draining]
        if not others and not force:
            return DrainOutcome.LAST_GATEWAY
        if not await self._registry.request_drain(name):
            return DrainOutcome.NOT_FOUND
        return DrainOutcome.REQUESTED

    async def _reports(self) -> list[GatewayReport]:
        try:
            self._last = await self._registry.reports()
        except (RedisError, OSError) as exc:
            self._log.warning(
                "registry",
                "reading the gateway registry failed, serving the last list of"
                " %d gateways: %r",
                len(self._last),
                exc,
            )
        return self._last
