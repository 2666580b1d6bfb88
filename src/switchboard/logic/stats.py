"""Server statistics: Prometheus metrics, and the last hour for the dashboard.

Counters (messages, syncs, errors) are plain integers that the logic layer
raises where the events happen, so counting costs an attribute increment on
the hot path. Figures that describe a state (connections, users, groups) are
read from the gateways and the store by :meth:`Stats.refresh` when the
statistics are requested. :meth:`Stats.sample` records one point of the
history that the admin API returns; the server calls it every
``interval`` seconds.

In a cluster every process counts its own events. A :class:`SharedCounters`
adds them up across processes, and the dispatcher reports those totals
(``Stats.shared``) in place of its own counts.
"""

from __future__ import annotations

import abc
import collections
import itertools
import math
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from switchboard.bus.base import GatewayLoad
from switchboard.errors import SwitchboardError
from switchboard.ids import UserId
from switchboard.protocol import pb
from switchboard.store.base import Store

__all__ = [
    "HISTORY_SECONDS",
    "PLATFORMS",
    "CounterTotals",
    "SharedCounters",
    "SharedCountersError",
    "Stats",
    "cpu_seconds",
    "platform_name",
    "rss_bytes",
]

HISTORY_SECONDS = 3600
"""Length of the history the admin API returns."""


def platform_name(platform: int) -> str:
    """Return the label of a ``Platform`` value: ``android``, ``ios``, ``web``..."""
    try:
        name = pb.Platform.Name(platform)
    except ValueError:
        return "unspecified"
    return name.removeprefix("PLATFORM_").lower()


PLATFORMS = tuple(platform_name(value) for value in pb.Platform.values())
"""Every platform label, in the schema's order."""


@dataclass(slots=True)
class CounterTotals:
    """The counters of :class:`Stats`: of one process, or summed over a cluster."""

    messages_sent: int = 0
    messages_delivered: int = 0
    syncs: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Error replies by lower-case code."""


class SharedCountersError(SwitchboardError):
    """The storage of the shared counters failed."""


class SharedCounters(abc.ABC):
    """Counters summed over the processes of a deployment."""

    @abc.abstractmethod
    async def totals(self, stats: Stats) -> CounterTotals:
        """Add what ``stats`` counted since the last call; return the sums.

        Raises SharedCountersError when the storage fails; ``stats``' counts
        are then added by a later call.
        """


@dataclass(slots=True)
class _Point:
    time: float
    """Seconds since the Unix epoch."""
    sent: int
    delivered: int
    connections: int


@dataclass(slots=True)
class _CpuUse:
    wall: float = field(default_factory=time.monotonic)
    seconds: float = field(default_factory=lambda: cpu_seconds())
    percent: float = 0.0
    """Share of one core used between the last two samples."""


class Stats:
    """The statistics of one server process.

    ``registry`` contains one collector that reports them all; pass it to
    prometheus_client to expose them.
    """

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        """Seconds between two points of the history."""
        self.messages_sent = 0
        """Messages stored, 1:1 and group; resends of a stored one not counted."""
        self.messages_delivered = 0
        """Messages written to a live device connection."""
        self.syncs = 0
        """Sync pages served, in Connected and as SyncResponse."""
        self.errors: collections.Counter[str] = collections.Counter()
        """Error replies by lower-case code, on sockets and over HTTP."""
        self.users = 0
        self.groups = 0
        self.gateways: list[GatewayLoad] = []
        self.shared: CounterTotals | None = None
        """Totals of a whole cluster, reported in place of this process's
        counters when set."""
        self.registry = CollectorRegistry()
        self.registry.register(_StatsCollector(self))
        self._history: collections.deque[_Point] = collections.deque(
            maxlen=max(2, math.ceil(HISTORY_SECONDS / interval) + 1)
        )
        self._cpu = _CpuUse()

    def count_error(self, code: str) -> None:
        """Count one error reply; ``code`` is its lower-case name."""
        self.errors[code] += 1

    async def refresh(self, store: Store, gateways: list[GatewayLoad]) -> None:
        """Read the account and group totals and take the gateways' reports."""
        self.users = await store.count_users()
        self.groups = await store.count_groups()
        self.gateways = gateways

    def by_platform(self) -> dict[str, int]:
        """Return authenticated connections by platform, over all gateways."""
        totals = dict.fromkeys(PLATFORMS, 0)
        for gateway in self.gateways:
            for platform, count in gateway.by_platform.items():
                name = platform_name(platform)
                totals[name] = totals.get(name, 0) + count
        return totals

    def own_counters(self) -> CounterTotals:
        """Return this process's counters."""
        return CounterTotals(
            self.messages_sent, self.messages_delivered, self.syncs, dict(self.errors)
        )

    def counters(self) -> CounterTotals:
        """Return the counters to report: ``shared`` if set, else this process's."""
        return self.shared if self.shared is not None else self.own_counters()

    def active_users(self) -> int:
        users: set[UserId] = set()
        for gateway in self.gateways:
            users |= gateway.users
        return len(users)

    def metrics_text(self) -> bytes:
        """Return the metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    def sample(self, connections: int) -> None:
        """Record one point of the history, and the CPU use since the last."""
        counters = self.counters()
        point = _Point(
            time.time(),
            counters.messages_sent,
            counters.messages_delivered,
            connections,
        )
        self._history.append(point)

        now, cpu = time.monotonic(), cpu_seconds()
        elapsed = now - self._cpu.wall
        if elapsed > 0:
            self._cpu.percent = 100 * (cpu - self._cpu.seconds) / elapsed
        self._cpu.wall, self._cpu.seconds = now, cpu

    def snapshot(self) -> dict[str, Any]:
        """Return the figures and the last hour's rates, for the admin API.

        Rates are per second, between consecutive history points. Call
        :meth:`refresh` first so that the state figures are current.
        """
        points = list(self._history)
        series = [
            {
                "time": round(later.time, 3),
                "sent_per_second": _rate(earlier, later, later.sent - earlier.sent),
                "delivered_per_second": _rate(
                    earlier, later, later.delivered - earlier.delivered
                ),
                "connections": later.connections,
            }
            for earlier, later in itertools.pairwise(points)
        ]
        gateways = [
            {
                "name": gateway.name,
                "address": gateway.address,
                "connections": gateway.connections,
                "draining": gateway.draining,
                "cpu_percent": round(
                    self._cpu.percent
                    if gateway.cpu_percent is None
                    else gateway.cpu_percent,
                    1,
                ),
                "rss_bytes": rss_bytes()
                if gateway.rss_bytes is None
                else gateway.rss_bytes,
            }
            for gateway in self.gateways
        ]
        counters = self.counters()
        return {
            "connections": sum(gateway.connections for gateway in self.gateways),
            "by_platform": self.by_platform(),
            "users": self.users,
            "active_users": self.active_users(),
            "groups": self.groups,
            "messages_sent": counters.messages_sent,
            "messages_delivered": counters.messages_delivered,
            "syncs": counters.syncs,
            "errors": dict(counters.errors),
            "gateways": gateways,
            "history": series,
            "sample_interval": self.interval,
        }


class _StatsCollector(Collector):
    """Reports a Stats object's figures at each scrape."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        counters = stats.counters()
        yield CounterMetricFamily(
            "switchboard_messages_sent",
            "Messages stored, 1:1 and group; resends of a stored one not counted",
            value=counters.messages_sent,
        )
        yield CounterMetricFamily(
            "switchboard_messages_delivered",
            "Messages written to a live device connection",
            value=counters.messages_delivered,
        )
        yield CounterMetricFamily(
            "switchboard_syncs",
            "Sync pages served, in Connected and as SyncResponse",
            value=counters.syncs,
        )
        errors = CounterMetricFamily(
            "switchboard_errors",
            "Error replies by code, on sockets and over HTTP",
            labels=["code"],
        )
        for code, count in sorted(counters.errors.items()):
            errors.add_metric([code], count)
        yield errors

        connections = GaugeMetricFamily(
            "switchboard_connections",
            "Authenticated connections by platform",
            labels=["platform"],
        )
        for platform, count in stats.by_platform().items():
            connections.add_metric([platform], count)
        yield connections
        by_gateway = GaugeMetricFamily(
            "switchboard_gateway_connections",
            "Authenticated connections by gateway",
            labels=["gateway", "draining"],
        )
        for gateway in stats.gateways:
            draining = "true" if gateway.draining else "false"
            by_gateway.add_metric([gateway.name, draining], gateway.connections)
        yield by_gateway
        yield GaugeMetricFamily(
            "switchboard_active_users",
            "Users with at least one authenticated connection",
            value=stats.active_users(),
        )
        yield GaugeMetricFamily("switchboard_users", "Accounts", value=stats.users)
        yield GaugeMetricFamily("switchboard_groups", "Groups", value=stats.groups)


def _rate(earlier: _Point, later: _Point, change: int) -> float:
    elapsed = later.time - earlier.time
    return round(change / elapsed, 3) if elapsed > 0 else 0.0


def cpu_seconds() -> float:
    """Return the CPU time this process used, user and system, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    """Return the process's resident set size in bytes, or 0 without /proc."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
