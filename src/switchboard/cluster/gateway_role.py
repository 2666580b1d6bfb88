"""``switchboard gateway``: client connections of a cluster, and nothing else.

The process listens for TCP clients on ``tcp_host:tcp_port`` and for
WebSocket clients on ``http_host:http_port`` at ``/v1/ws``. It publishes
their frames on the NATS bus and writes back what the logic workers send.
It keeps no state beyond its connections.

Every ``lease_ttl / 3`` seconds it renews its routing lease and reports its
addresses and load to the registry in Redis, where the dispatcher finds it.
If it stops renewing (a crash), its routes stop counting and it drops out
of the dispatcher's list within ``lease_ttl``. When Redis was unreachable,
or its lease was gone, it stores the routes of all its connections again.

SIGTERM, SIGINT or an admin's drain request drains the gateway. It first
reports itself draining, so the dispatcher stops listing it. Then it stops
accepting and reading, hands the frames already read to the bus, and tells
every client to reconnect after a delay spread evenly over ``drain_window``. A
client gets another gateway from the dispatcher and resends the messages
that have no SendAck yet; the logic layer drops those it stored already.
After an admin's drain the gateway stays up, unlisted, until SIGTERM. When
it stops, it ends its lease, so its routes stop counting at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from fastapi import FastAPI
from redis.exceptions import RedisError

from switchboard.bus.nats import NatsBus
from switchboard.cluster.registry import GatewayRegistry, GatewayReport
from switchboard.cluster.serving import HttpServer, stop_requested
from switchboard.cluster.settings import ClusterSettings
from switchboard.config import Settings
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.tcp import start_tcp_server
from switchboard.logic.routing_redis import RedisRoutingTable
from switchboard.logic.stats import cpu_seconds, rss_bytes
from switchboard.logs import RateLimitedLog

__all__ = ["run_gateway"]

logger = logging.getLogger("switchboard.cluster")

FORWARD_TIMEOUT_S: Final = 10.0
"""Time a drain waits for frames already read to be stored in NATS."""
ACK_GRACE_S: Final = 1.0
"""Time a drain waits after that for the SendAcks of those frames, so that
clients need not resend them."""


async def run_gateway(settings: Settings, cluster: ClusterSettings) -> None:
    """Run a gateway until SIGTERM, SIGINT or a drain request, then drain."""
    name = cluster.process_name("gateway", unique=True)
    bus = await NatsBus.connect(
        cluster.nats_url,
        cluster.namespace,
        partitions=cluster.partitions,
        publish_timeout_s=cluster.publish_timeout,
    )
    leases = RedisRoutingTable(
        cluster.redis_url, prefix=cluster.redis_prefix, lease_ttl_s=cluster.lease_ttl
    )
    registry = GatewayRegistry(
        cluster.redis_url, prefix=cluster.redis_prefix, ttl_s=cluster.lease_ttl
    )
    gateway = Gateway(name, settings, bus)
    gateway.start()
    await bus.wait_subscribed()

    tcp_server = await start_tcp_server(gateway, settings.tcp_host, settings.tcp_port)
    tcp_port: int = tcp_server.sockets[0].getsockname()[1]
    http = HttpServer(_gateway_app(gateway), settings, gateway)
    http_port = await http.start()
    report = GatewayReport(
        name,
        tcp=_advertised_tcp(settings, cluster, tcp_port),
        ws=_advertised_ws(settings, cluster, http_port),
    )
    drain_requested = asyncio.Event()
    reporter = asyncio.create_task(
        _report_periodically(gateway, report, registry, leases, drain_requested)
    )
    logger.info(
        "gateway %s serving tcp=%s:%d http=%s:%d, listed as %s and %s",
        name,
        settings.tcp_host,
        tcp_port,
        settings.http_host,
        http_port,
        report.tcp,
        report.ws,
    )

    stop = stop_requested()
    await _wait_any([stop, drain_requested], reporter)
    await _drain(gateway, report, registry, settings.drain_window, tcp_server)
    if not stop.is_set() and not reporter.done():
        # Drained by an admin: stay up, unlisted, like the embedded server.
        logger.info("gateway %s drained; it stays unlisted until SIGTERM", name)
        await _wait_any([stop], reporter)
    if reporter.done():
        error = reporter.exception()
        logger.error("gateway %s stopped reporting", name, exc_info=error)
    reporter.cancel()

    await http.stop()
    await gateway.stop()
    try:
        await registry.withdraw(name)
        await leases.release_lease(name)
    except (RedisError, OSError) as exc:
        logger.warning(
            "gateway %s could not leave the registry; its entry and routes"
            " expire within %.0f s: %r",
            name,
            cluster.lease_ttl,
            exc,
        )
    await bus.close()
    await registry.close()
    await leases.close()
    logger.info("gateway %s stopped", name)


async def _wait_any(events: list[asyncio.Event], task: asyncio.Task[None]) -> None:
    """Return when one of ``events`` is set or ``task`` ends."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    await asyncio.wait([*waiters, task], return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()


def _gateway_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="Switchboard gateway", openapi_url=None, docs_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {
            "status": "draining" if gateway.draining else "ok",
            "gateway": gateway.name,
            "connections": len(gateway),
        }

    return app


async def _report_periodically(
    gateway: Gateway,
    report: GatewayReport,
    registry: GatewayRegistry,
    leases: RedisRoutingTable,
    drain_requested: asyncio.Event,
) -> None:
    """Renew the routing lease and report the load until cancelled."""
    failures = RateLimitedLog(logger)
    interval = registry.ttl_s / 3
    restore = False
    while True:
        try:
            if not await leases.renew_lease(gateway.name) or restore:
                await _restore_routes(gateway, leases)
                restore = False
            if await _report(gateway, report, registry):
                logger.info("gateway %s: an admin requested a drain", gateway.name)
                drain_requested.set()
        except (RedisError, OSError) as exc:
            # Routes added meanwhile were not stored, so restore them later.
            restore = True
            failures.warning(
                "report",
                "gateway %s could not report to Redis, retrying in %.1f s: %r",
                gateway.name,
                interval,
                exc,
            )
        await asyncio.sleep(interval)


async def _restore_routes(gateway: Gateway, leases: RedisRoutingTable) -> None:
    """Store the routes of every authenticated connection again."""
    routes = gateway.routes()
    if routes:
        await leases.restore(routes)
        logger.info(
            "gateway %s restored the routes of %d connections",
            gateway.name,
            len(routes),
        )


async def _report(
    gateway: Gateway, report: GatewayReport, registry: GatewayRegistry
) -> bool:
    """Report the current load; return whether a drain was requested."""
    load = gateway.load(report.tcp)
    report.connections = load.connections
    report.by_platform = load.by_platform
    report.users = len(load.users)
    # Once reported draining, always: _drain() reports it before it marks
    # the gateway, and a periodic report must not undo that meanwhile.
    report.draining = report.draining or gateway.draining
    report.cpu_percent = _cpu.percent()
    report.rss_bytes = rss_bytes()
    return await registry.report(report, load.users)


class _CpuMeter:
    """CPU use of this process between two calls of :meth:`percent`."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = cpu_seconds()

    def percent(self) -> float:
        """Return the share of one core used since the last call, in percent."""
        wall, cpu = time.monotonic(), cpu_seconds()
        elapsed = wall - self._wall
        used = 100 * (cpu - self._cpu) / elapsed if elapsed > 0 else 0.0
        self._wall, self._cpu = wall, cpu
        return round(used, 1)


_cpu = _CpuMeter()


async def _drain(
    gateway: Gateway,
    report: GatewayReport,
    registry: GatewayRegistry,
    window: float,
    tcp_server: asyncio.Server,
) -> None:
    # Unlisted first, so that no client is sent here once /healthz says
    # "draining".
    report.draining = True
    try:
        await _report(gateway, report, registry)
    except (RedisError, OSError) as exc:
        logger.warning(
            "gateway %s could not report its drain to Redis; the dispatcher"
            " lists it until its entry expires: %r",
            gateway.name,
            exc,
        )
    gateway.draining = True
    logger.info("gateway %s draining %d connections", gateway.name, len(gateway))

    tcp_server.close()
    gateway.stop_reading()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FORWARD_TIMEOUT_S
    while gateway.forwarding() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if gateway.forwarding():
        logger.error(
            "gateway %s: frames of %d connections were not stored in NATS within"
            " %.0f s; their clients resend them",
            gateway.name,
            gateway.forwarding(),
            FORWARD_TIMEOUT_S,
        )
    await asyncio.sleep(ACK_GRACE_S)

    gateway.send_reconnect(window, "gateway draining")
    await asyncio.sleep(0.2)


def _advertised_tcp(settings: Settings, cluster: ClusterSettings, port: int) -> str:
    if cluster.advertise_tcp:
        return cluster.advertise_tcp
    host = settings.advertise_host or settings.tcp_host
    return f"{_bracketed(host)}:{port}"


def _advertised_ws(settings: Settings, cluster: ClusterSettings, port: int) -> str:
    if cluster.advertise_ws:
        return cluster.advertise_ws
    host = settings.advertise_host or settings.http_host
    return f"ws://{_bracketed(host)}:{port}/v1/ws"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
