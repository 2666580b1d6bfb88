"""An HTTP protocol for uvicorn that closes connections slow to send a request.

uvicorn's own timers restart on every byte received, so a client that sends
half a request line, or half a WebSocket handshake, one byte at a time can
hold a connection for as long as it likes. This protocol gives each request
head a fixed deadline: from the connection's start for the first request, and
from the end of the previous response for the next one on a kept-alive
connection. After an upgrade, the gateway's authentication deadline for
Connect takes over.

A request body may arrive slowly, as uploads over mobile links do, but not
stall: a body that gets no byte for ``body_timeout`` seconds, while the
application is waiting for more, closes the connection.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DeadlineH11Protocol"]

logger = logging.getLogger("switchboard.gateway")


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline per request head and body stall.

    Subclasses set the two limits as class attributes.
    """

    request_deadline = 5.0
    """Seconds a connection has to send a whole request head."""
    body_timeout = 30.0
    """Seconds a request body may go without a byte."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._waiting_cycle: object = None
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.get_protocol() is not self:
            # Upgraded: a timer would keep this object alive for nothing.
            return
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.body_timeout, self._on_stall)

    def handle_events(self) -> None:
        super().handle_events()
        # A new request starts a new cycle; an upgrade hands the transport to
        # the WebSocket protocol or rejects it and closes. Either way the head
        # arrived in time.
        upgraded = self.transport.get_protocol() is not self
        closing = self.transport.is_closing()
        new_cycle = self.cycle is not None and self.cycle is not self._waiting_cycle
        if self._head_timer is not None and (new_cycle or upgraded or closing):
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may have started in the call above.
        if not self.transport.is_closing() and self._idle():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        # The cycle in force now is the one to wait past: handle_events cancels
        # the deadline once a request creates another.
        self._waiting_cycle = self.cycle
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(
            self.request_deadline, self._on_deadline
        )

    def _idle(self) -> bool:
        """Return whether no request is being read or responded to."""
        return self.cycle is None or self.cycle.response_complete

    def _on_deadline(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if self.cycle is not self._waiting_cycle or not self._idle():
            return
        logger.info(
            "closed HTTP connection from %s: no complete request within %.0f s",
            self.client,
            self.request_deadline,
        )
        self.transport.close()

    def _on_stall(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.body):
            # The application has not read what arrived: the wait is its own.
            self._body_timer = self.loop.call_later(self.body_timeout, self._on_stall)
            return
        logger.info(
            "closed HTTP connection from %s: request body stalled for %.0f s",
            self.client,
            self.body_timeout,
        )
        self.transport.close()
