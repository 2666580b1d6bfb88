"""Logging helpers: connection-scoped adapters and rate-limited warnings."""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

__all__ = ["ContextAdapter", "RateLimitedLog", "configure_logging"]


def configure_logging(level: str) -> None:
    """Send Switchboard's logs to stderr, one line per record."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # The WebSocket protocol logs "connection open" and "connection closed"
    # at INFO for each connection, which the gateway's own lines repeat.
    if logging.getLevelName(level.upper()) != logging.DEBUG:
        logging.getLogger("websockets.server").setLevel(logging.WARNING)


class RateLimitedLog:
    """Log one line per key and interval, counting the lines it held back.

    Rejected input is logged this way, so that a client that floods bad
    frames cannot flood the log.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        suppressed = self._suppressed.pop(key, 0)
        self._last[key] = now
        if len(self._last) > 10_000:
            self._last.clear()
        if suppressed:
            message += " (%d similar lines suppressed)"
            args = (*args, suppressed)
        self._logger.warning(message, *args)


class ContextAdapter(logging.LoggerAdapter[logging.Logger]):
    """Prefix each line with the adapter's context, e.g. ``conn=7 user=3``."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        context = " ".join(f"{k}={v}" for k, v in (self.extra or {}).items())
        return f"[{context}] {msg}", kwargs
