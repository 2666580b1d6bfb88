"""Parts every role process uses: the event loop, stop signals and HTTP."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from switchboard.api.listener import HttpServer

__all__ = ["HttpServer", "run_until_stopped", "stop_requested"]

logger = logging.getLogger("switchboard.cluster")


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
