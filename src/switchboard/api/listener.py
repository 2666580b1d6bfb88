"""The HTTP API and WebSocket gateway's listener: uvicorn in a task.

uvicorn parses HTTP requests and runs the ASGI application. WebSocket
upgrades to /v1/ws bypass the application: the HTTP protocol hands them to
the gateway (see switchboard.api.upgrade).

The listening socket is bound before uvicorn starts, so a port in use fails
at once with an OSError naming the address, before anything logs that it
serves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn

from switchboard.api.upgrade import http_protocol
from switchboard.config import Settings
from switchboard.gateway.gateway import Gateway
from switchboard.sockets import bind

__all__ = ["HttpServer"]

START_TIMEOUT_S = 30.0
"""Seconds uvicorn may take from its start until it serves."""


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: its owner drains first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """uvicorn serving ``app`` on ``settings.http_host:http_port`` in a task.

    ``gateway``, when given, serves WebSocket clients at /v1/ws; without it,
    WebSocket upgrade requests get a 404. Serves HTTPS and WSS when
    ``settings`` name a TLS certificate and key.
    """

    def __init__(
        self, app: Any, settings: Settings, gateway: Gateway | None = None
    ) -> None:
        self._settings = settings
        protocol = http_protocol(
            settings.auth_timeout, settings.http_body_timeout, gateway
        )
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            http=protocol,
            h11_max_incomplete_event_size=16 * 1024,
            ws="none",
            lifespan="off",
            timeout_graceful_shutdown=5,
            ssl_certfile=settings.tls_cert or None,
            ssl_keyfile=settings.tls_key or None,
        )
        self._server = _Uvicorn(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind and start serving; return the port once the socket listens.

        Raises OSError when the address cannot be bound (a port in use, an
        unknown host) or when uvicorn stops before it serves.
        """
        listener = bind(self._settings.http_host, self._settings.http_port)
        port: int = listener.getsockname()[1]
        self.task = asyncio.create_task(self._server.serve(sockets=[listener]))
        async with asyncio.timeout(START_TIMEOUT_S):
            while not self._server.started:
                if self.task.done():
                    listener.close()
                    raise OSError(f"the HTTP server on port {port} stopped at start")
                await asyncio.sleep(0.02)
        return port

    async def stop(self) -> None:
        """Close the listener and open connections; return when stopped."""
        self._server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
