"""Wiring of the embedded server: ``switchboard serve``.

One process, one event loop: the TCP gateway, the HTTP API with the
WebSocket gateway, the logic layer, the in-process bus and routing table, and
SQLite storage. SIGTERM or SIGINT drains: clients stop being read, accepted
messages finish storing, each client gets a Reconnect frame (with a random delay
within the drain window), then the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from switchboard.api.adminkey import load_admin_key
from switchboard.api.app import Services, create_app
from switchboard.api.listener import HttpServer
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.tcp import start_tcp_server
from switchboard.logic.auth import AuthService
from switchboard.logic.chat import ChatService
from switchboard.logic.routing import MemoryRoutingTable
from switchboard.logic.stats import Stats
from switchboard.logs import configure_logging
from switchboard.store.sqlite import SqliteStore
from switchboard.tls import server_context

__all__ = ["serve"]

logger = logging.getLogger("switchboard.server")

DRAIN_STORE_TIMEOUT = 10.0
"""Seconds a drain waits for accepted messages to be stored."""


def serve(settings: Settings) -> None:
    """Run the embedded server until SIGTERM or SIGINT.

    Raises ValueError if ``settings`` do not fit together.
    """
    settings.validate()
    configure_logging(settings.log_level)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(settings))
    else:
        uvloop.run(run(settings))


async def run(settings: Settings) -> None:
    """Start every part, wait for a stop signal, drain and stop."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    admin_key = load_admin_key(settings, settings.data_dir)
    store = SqliteStore(
        settings.data_dir / "switchboard.db", synchronous=settings.synchronous
    )
    await store.open()
    bus = InProcessBus()
    routing = MemoryRoutingTable()
    auth = AuthService(store, settings)
    chat = ChatService(
        settings, store, bus, routing, auth, Stats(settings.stats_interval)
    )
    chat.start()
    gateway = Gateway(f"gw-{os.getpid()}", settings, bus)
    gateway.start()

    tls = server_context(settings.tls_cert, settings.tls_key) if settings.tls else None
    try:
        tcp_server = await start_tcp_server(
            gateway, settings.tcp_host, settings.tcp_port, tls
        )
    except OSError:
        await _close(gateway, bus, store)
        raise
    tcp_port = tcp_server.sockets[0].getsockname()[1]
    services = Services(
        settings, store, auth, chat, gateway, tcp_port, admin_key=admin_key
    )
    http = HttpServer(create_app(services), settings, gateway)
    try:
        http_port = await http.start()
    except OSError:
        tcp_server.close()
        await _close(gateway, bus, store)
        raise
    assert http.task is not None
    http_task = http.task
    sampler = asyncio.create_task(_sample_stats(chat.stats, gateway))
    logger.info(
        "serving tcp=%s:%d http=%s:%d tls=%s data_dir=%s",
        settings.tcp_host,
        tcp_port,
        settings.http_host,
        http_port,
        "on" if settings.tls else "off",
        settings.data_dir,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    done, _ = await asyncio.wait(
        [asyncio.create_task(stop.wait()), http_task],
        return_when=asyncio.FIRST_COMPLETED,
    )
    if http_task in done:
        logger.error("HTTP server stopped unexpectedly; shutting down")

    # Drain: stop reading, finish accepted sends, tell clients to reconnect.
    logger.info("draining %d connections", len(gateway))
    tcp_server.close()
    gateway.stop_reading()
    try:
        await asyncio.wait_for(chat.wait_idle(), DRAIN_STORE_TIMEOUT)
    except TimeoutError:
        logger.error(
            "accepted messages still unstored after %.0f s", DRAIN_STORE_TIMEOUT
        )
    gateway.send_reconnect(settings.drain_window, "server shutting down")
    await asyncio.sleep(0.2)

    sampler.cancel()
    await http.stop()
    await _close(gateway, bus, store)
    logger.info("stopped")


async def _close(gateway: Gateway, bus: InProcessBus, store: SqliteStore) -> None:
    await gateway.stop()
    await bus.close()
    await store.close()


async def _sample_stats(stats: Stats, gateway: Gateway) -> None:
    """Record a point of the statistics history every ``stats.interval`` seconds."""
    while True:
        stats.sample(len(gateway))
        await asyncio.sleep(stats.interval)
