"""``switchboard dispatcher``: the access point and HTTP API of a cluster.

Clients use the dispatcher's URL as their server URL. It serves the same
HTTP API as the embedded server (accounts, logins, history, groups, media,
admin), except ``/v1/ws``. It builds ``GET /v1/gateways`` from the gateway
registry in Redis: the live gateways that are not draining, least loaded
first. A Send over HTTP, a logout or a group change is stored in PostgreSQL
and delivered to the gateways over NATS, as a logic worker would.

Any number of dispatchers can run behind a load balancer. Each keeps its own
login-failure and HTTP send-rate counters, and media in its own
``data_dir``. Its statistics (``GET /metrics``, ``GET /v1/admin/stats``)
cover the whole cluster: the counters summed in Redis
(``switchboard.cluster.counters``) and the gateways' reports.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from switchboard.api.admin import refresh_stats
from switchboard.api.adminkey import load_admin_key
from switchboard.api.app import Services, create_app
from switchboard.bus.nats import NatsBus
from switchboard.cluster.counters import RedisCounters
from switchboard.cluster.directory import RedisDirectory
from switchboard.cluster.registry import GatewayRegistry
from switchboard.cluster.routing import ResilientRoutingTable
from switchboard.cluster.serving import HttpServer, stop_requested
from switchboard.cluster.settings import ClusterSettings
from switchboard.config import Settings
from switchboard.logic.auth import AuthService
from switchboard.logic.chat import ChatService
from switchboard.logic.routing_redis import RedisRoutingTable
from switchboard.logic.stats import Stats
from switchboard.logs import RateLimitedLog
from switchboard.store.base import StoreError
from switchboard.store.postgres import PostgresStore

__all__ = ["run_dispatcher"]

logger = logging.getLogger("switchboard.cluster")


async def run_dispatcher(settings: Settings, cluster: ClusterSettings) -> None:
    """Run a dispatcher until SIGTERM or SIGINT."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = PostgresStore(cluster.dsns, pool_size=cluster.postgres_pool_size)
    await store.open()
    routing = ResilientRoutingTable(
        RedisRoutingTable(
            cluster.redis_url,
            prefix=cluster.redis_prefix,
            lease_ttl_s=cluster.lease_ttl,
        )
    )
    registry = GatewayRegistry(
        cluster.redis_url, prefix=cluster.redis_prefix, ttl_s=cluster.lease_ttl
    )
    # Publishes deliveries only: the dispatcher consumes no inbound frames.
    bus = await NatsBus.connect(
        cluster.nats_url, cluster.namespace, partitions=cluster.partitions
    )
    auth = AuthService(store, settings)
    chat = ChatService(
        settings, store, bus, routing, auth, Stats(settings.stats_interval)
    )
    counters = RedisCounters(cluster.redis_url, prefix=cluster.redis_prefix)
    services = Services(
        settings,
        store,
        auth,
        chat,
        None,
        0,
        directory=RedisDirectory(registry),
        admin_key=load_admin_key(settings, None),
        counters=counters,
    )
    http = HttpServer(create_app(services), settings)
    http_port = await http.start()
    sampler = asyncio.create_task(_sample_stats(chat.stats, services))
    sweeper = asyncio.create_task(_sweep_routes(routing.table, cluster.lease_ttl / 3))
    logger.info(
        "dispatcher serving http=%s:%d data_dir=%s",
        settings.http_host,
        http_port,
        settings.data_dir,
    )

    await stop_requested().wait()
    logger.info("dispatcher stopping")
    sampler.cancel()
    sweeper.cancel()
    await http.stop()
    await chat.wait_idle()
    await bus.close()
    await registry.close()
    await counters.close()
    await routing.close()
    await store.close()
    logger.info("dispatcher stopped")


async def _sample_stats(stats: Stats, services: Services) -> None:
    """Record a point of the statistics history every ``stats.interval`` s.

    The points hold the cluster's summed counters and connections. While
    PostgreSQL fails, the points keep the gateways' last reports.
    """
    failures = RateLimitedLog(logger)
    while True:
        try:
            await refresh_stats(services)
        except StoreError as exc:
            failures.warning("sample", "reading the statistics failed: %r", exc)
        stats.sample(sum(load.connections for load in stats.gateways))
        await asyncio.sleep(stats.interval)


async def _sweep_routes(table: RedisRoutingTable, interval: float) -> None:
    """Delete the routes of crashed gateways every ``interval`` seconds.

    Their routes stopped counting when the lease expired; this removes them
    from Redis, so that the routes of a user who is never looked up again
    do not stay behind.
    """
    failures = RateLimitedLog(logger)
    while True:
        await asyncio.sleep(interval)
        try:
            await table.sweep()
        except (RedisError, OSError) as exc:
            failures.warning("sweep", "sweeping dead gateways' routes failed: %r", exc)
