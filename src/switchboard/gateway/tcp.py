"""TCP transport for the gateway: an asyncio protocol per connection."""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

from switchboard.gateway.gateway import Gateway
from switchboard.gateway.session import Session
from switchboard.sockets import bind

__all__ = ["TcpSession", "start_tcp_server"]


class TcpSession(Session, asyncio.Protocol):
    """A session on a TCP connection."""

    __slots__ = ("_transport",)

    transport_name = "tcp"

    def __init__(self, gateway: Gateway) -> None:
        Session.__init__(self, gateway, peer="?")
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self.gateway.draining:
            self._transport.abort()
            return
        self.opened()

    def data_received(self, data: bytes) -> None:
        self.receive_data(data)

    def eof_received(self) -> bool:
        self.close("peer closed")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close("peer closed" if exc is None else f"connection lost: {exc}")

    def write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def write_buffer_size(self) -> int:
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

    def close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort_transport(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def set_reading(self, enabled: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if enabled:
            transport.resume_reading()
        else:
            transport.pause_reading()


async def start_tcp_server(
    gateway: Gateway, host: str, port: int, tls: ssl.SSLContext | None = None
) -> asyncio.Server:
    """Listen for TCP clients of ``gateway`` on ``host:port``, over TLS if
    ``tls`` is given.

    Raises OSError, naming the address, when it cannot be bound.
    """
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: TcpSession(gateway),
        sock=bind(host, port, backlog=4096),
        ssl=tls,
        # The handshake counts against the auth timeout, but a client that
        # never finishes it must not hold the socket longer.
        ssl_handshake_timeout=None if tls is None else gateway.settings.auth_timeout,
    )
