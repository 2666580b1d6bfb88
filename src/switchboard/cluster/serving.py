"""Parts every role process uses: the event loop, stop signals and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine, Iterator
from typing import Any

import uvicorn

from switchboard.api.slowloris import deadline_protocol
from switchboard.config import Settings

__all__ = ["HttpServer", "run_until_stopped", "stop_requested"]

logger = logging.getLogger("switchboard.cluster")

HTTP_START_TIMEOUT_S = 30.0


def run_until_stopped(main: Coroutine[Any, Any, None]) -> None:
    """Run a role's ``main`` on uvloop when it is installed, else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def stop_requested() -> asyncio.Event:
    """Return an event set by the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: the role decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """uvicorn serving ``app`` on ``settings.http_host:http_port`` in a task."""

    def __init__(self, app: Any, settings: Settings) -> None:
        config = uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            http=deadline_protocol(settings.auth_timeout, settings.http_body_timeout),
            h11_max_incomplete_event_size=16 * 1024,
            ws="websockets-sansio",
            ws_max_size=settings.max_frame_size + 16,
            ws_ping_interval=None,
            ws_per_message_deflate=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _Uvicorn(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Start serving; return the port once the socket listens.

        Raises OSError when the server stops before it listens, for example
        because the port is in use.
        """
        self.task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(HTTP_START_TIMEOUT_S):
            while not self._server.started:
                if self.task.done():
                    raise OSError("the HTTP server stopped before it listened")
                await asyncio.sleep(0.02)
        sockets = self._server.servers[0].sockets
        port: int = sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        self._server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
