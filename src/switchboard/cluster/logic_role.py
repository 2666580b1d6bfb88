"""``switchboard logic``: a logic worker of a cluster.

The worker claims partitions of the inbound stream on NATS and handles their
frames: authentication, sequencing and storage in PostgreSQL, routing in
Redis, and deliveries back to the gateways over NATS. Workers share the
partitions evenly, and a crashed worker's partitions move to the others
within ``lease_ttl`` seconds (``switchboard.bus.nats_partitions``).

It serves ``GET /healthz`` and ``GET /metrics`` (this worker's counters) on
``http_host:http_port``, and adds its counters to the cluster's sums in
Redis every ``lease_ttl / 3`` seconds (``switchboard.cluster.counters``).
SIGTERM or SIGINT stops taking frames, waits until the frames taken are
stored and acknowledged, adds its last counts, releases the partitions for
the other workers at once, and exits.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Response
from redis.exceptions import RedisError

from switchboard.bus.nats import NatsBus
from switchboard.cluster.counters import RedisCounters, flush_periodically
from switchboard.cluster.routing import ResilientRoutingTable
from switchboard.cluster.serving import HttpServer, stop_requested
from switchboard.cluster.settings import ClusterSettings
from switchboard.config import Settings
from switchboard.logic.auth import AuthService
from switchboard.logic.chat import ChatService
from switchboard.logic.routing_redis import RedisRoutingTable
from switchboard.logic.stats import Stats
from switchboard.store.postgres import PostgresStore

__all__ = ["run_logic"]

logger = logging.getLogger("switchboard.cluster")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONCURRENT_CONNECTS = 32
"""Connects a worker handles at once, across all its partitions."""


async def run_logic(settings: Settings, cluster: ClusterSettings) -> None:
    """Run a logic worker until SIGTERM or SIGINT."""
    name = cluster.process_name("logic", unique=True)
    store = PostgresStore(cluster.dsns, pool_size=cluster.postgres_pool_size)
    await store.open()
    routing = ResilientRoutingTable(
        RedisRoutingTable(
            cluster.redis_url,
            prefix=cluster.redis_prefix,
            lease_ttl_s=cluster.lease_ttl,
        )
    )
    bus = await NatsBus.connect(
        cluster.nats_url,
        cluster.namespace,
        partitions=cluster.partitions,
        worker=name,
        lease_ttl_s=cluster.lease_ttl,
    )
    auth = AuthService(store, settings)
    chat = ChatService(
        settings,
        store,
        bus,
        routing,
        auth,
        Stats(settings.stats_interval),
        concurrent_connects=CONCURRENT_CONNECTS,
    )
    chat.start()
    counters = RedisCounters(cluster.redis_url, prefix=cluster.redis_prefix)
    flusher = asyncio.create_task(
        flush_periodically(counters, chat.stats, cluster.lease_ttl / 3)
    )
    http = HttpServer(_logic_app(name, chat, bus), settings)
    http_port = await http.start()
    logger.info(
        "logic worker %s started, http=%s:%d", name, settings.http_host, http_port
    )

    await stop_requested().wait()
    logger.info("logic worker %s stopping", name)
    await bus.close()
    await chat.wait_idle()
    await http.stop()
    flusher.cancel()
    try:
        await counters.flush(chat.stats)
    except (RedisError, OSError) as exc:
        logger.warning(
            "logic worker %s could not add its last counts to Redis: %r", name, exc
        )
    await counters.close()
    await routing.close()
    await store.close()
    logger.info("logic worker %s stopped", name)


def _logic_app(name: str, chat: ChatService, bus: NatsBus) -> FastAPI:
    app = FastAPI(title="Switchboard logic worker", openapi_url=None, docs_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "worker": name, "partitions": bus.owned_partitions}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(chat.stats.metrics_text(), media_type=PROMETHEUS_TEXT)

    return app
