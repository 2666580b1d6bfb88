"""An HTTP protocol for uvicorn that closes connections slow to send a request.

uvicorn's own timers restart on every byte received, so a client that sends
half a request line, or half a WebSocket handshake, one byte at a time can
hold a connection for as long as it likes. This protocol gives each new
connection a fixed deadline for its first complete request head. After an
upgrade, the gateway's authentication deadline for Connect takes over.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["deadline_protocol"]

logger = logging.getLogger("switchboard.gateway")


class _DeadlineH11Protocol(H11Protocol):
    request_deadline = 5.0
    """Seconds a new connection has to send a whole request head."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.request_deadline, self._on_deadline
        )

    def handle_events(self) -> None:
        super().handle_events()
        # A parsed request starts a cycle; an upgrade hands the transport to
        # the WebSocket protocol. Either way the head arrived in time.
        upgraded = self.transport.get_protocol() is not self
        if self._deadline is not None and (self.cycle is not None or upgraded):
            self._deadline.cancel()
            self._deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        logger.info(
            "closed HTTP connection from %s: no complete request within %.0f s",
            self.client,
            self.request_deadline,
        )
        self.transport.close()


def deadline_protocol(request_deadline: float) -> type[Any]:
    """Return the protocol class to pass as uvicorn's ``http`` setting."""
    return type(
        "DeadlineH11Protocol",
        (_DeadlineH11Protocol,),
        {"request_deadline": request_deadline},
    )
