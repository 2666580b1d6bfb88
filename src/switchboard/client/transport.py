"""Byte transports to a gateway: TCP streams and WebSocket binary messages.

Both carry the same frame bytes; a transport neither parses nor frames them.
:meth:`Transport.receive` raises ConnectionClosed when the server closed the
connection cleanly and ConnectionBroken when it was lost (reset, refused,
timed out); opening raises ConnectionBroken as well.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import (
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidURI,
    WebSocketException,
)

from switchboard.client.models import Gateway
from switchboard.config import parse_address
from switchboard.errors import ConnectionBroken, ConnectionClosed

__all__ = [
    "MAX_RECEIVE_SIZE",
    "TcpTransport",
    "Transport",
    "TransportFactory",
    "WebSocketTransport",
    "open_transport",
    "transport_factory",
]

logger = logging.getLogger("switchboard.client")

MAX_RECEIVE_SIZE = 16 * 1024 * 1024
"""Largest WebSocket message accepted from a gateway, in bytes.

Gateways batch several frames into one message, and one sync page can hold
many bodies, so this is well above the server's frame limit for clients.
"""

_READ_SIZE = 64 * 1024


class Transport(abc.ABC):
    """A connection to one gateway that moves bytes in both directions."""

    name: str
    """Transport kind: ``tcp`` or ``ws``."""
    address: str

    @abc.abstractmethod
    async def send(self, data: bytes) -> None:
        """Write ``data``; raise ConnectionBroken if the connection is gone."""

    @abc.abstractmethod
    async def receive(self) -> bytes:
        """Return the next bytes received; raise at the end of the connection."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection gracefully; safe to call more than once."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop the connection at once, discarding unsent data.

        A :meth:`receive` waiting in another task then raises.
        """


TransportFactory = Callable[[Gateway], Awaitable[Transport]]
"""Opens a transport to a gateway; raises ConnectionClosedError or OSError.

The caller bounds the time it may take with ``asyncio.timeout``.
"""


class TcpTransport(Transport):
    """Frames over a TCP connection (asyncio streams)."""

    name = "tcp"

    def __init__(
        self, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.address = address
        self._reader = reader
        self._writer = writer
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, address: str, tls: ssl.SSLContext | None = None
    ) -> TcpTransport:
        """Connect to ``HOST:PORT``, over TLS if ``tls`` is given; raise
        ConnectionBroken on failure, a failed certificate check included."""
        try:
            host, port = parse_address(address, 0)
        except ValueError as exc:
            raise ConnectionBroken(str(exc)) from exc
        try:
            reader, writer = await asyncio.open_connection(
                host, port, limit=_READ_SIZE, ssl=tls
            )
        except OSError as exc:
            raise ConnectionBroken(f"connecting to {address} failed: {exc}") from exc
        return cls(address, reader, writer)

    async def send(self, data: bytes) -> None:
        async with self._write_lock:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (OSError, RuntimeError) as exc:
                # RuntimeError: drain() after the transport was closed.
                raise ConnectionBroken(
                    f"writing to {self.address} failed: {exc}"
                ) from exc

    async def receive(self) -> bytes:
        try:
            data = await self._reader.read(_READ_SIZE)
        except OSError as exc:
            raise ConnectionBroken(
                f"reading from {self.address} failed: {exc}"
            ) from exc
        if not data:
            raise ConnectionClosed(f"{self.address} closed the connection")
        return data

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def abort(self) -> None:
        self._writer.transport.abort()


class WebSocketTransport(Transport):
    """Frames in binary WebSocket messages (the ``websockets`` asyncio client)."""

    name = "ws"

    def __init__(self, address: str, connection: ClientConnection) -> None:
        self.address = address
        self._connection = connection

    @classmethod
    async def open(
        cls, url: str, tls: ssl.SSLContext | None = None
    ) -> WebSocketTransport:
        """Connect to a ws:// or wss:// URL; raise ConnectionBroken on failure.

        ``tls`` verifies a wss:// server; None uses the system's trust store.
        """
        try:
            connection = await ws_connect(
                url,
                ssl=tls if url.startswith("wss:") else None,
                open_timeout=None,
                # Frames are tiny and mostly incompressible; the protocol has
                # its own heartbeat, so WebSocket pings would only add traffic.
                compression=None,
                ping_interval=None,
                max_size=MAX_RECEIVE_SIZE,
                proxy=None,
            )
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise ConnectionBroken(f"connecting to {url} failed: {exc}") from exc
        return cls(url, connection)

    async def send(self, data: bytes) -> None:
        try:
            await self._connection.send(data)
        except (WebSocketException, OSError) as exc:
            raise ConnectionBroken(f"writing to {self.address} failed: {exc}") from exc

    async def receive(self) -> bytes:
        try:
            message = await self._connection.recv()
        except ConnectionClosedOK as exc:
            raise ConnectionClosed(f"{self.address} closed the connection") from exc
        except (WebSocketException, OSError) as exc:
            raise ConnectionBroken(
                f"reading from {self.address} failed: {exc}"
            ) from exc
        if isinstance(message, str):
            raise ConnectionBroken(
                f"{self.address} sent a text WebSocket message; gateways send"
                " frames in binary messages"
            )
        return message

    async def close(self) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            await self._connection.close()

    def abort(self) -> None:
        self._connection.transport.abort()


async def open_transport(gateway: Gateway) -> Transport:
    """Open the default transport for ``gateway``, TCP without TLS; the
    default TransportFactory for an http:// server."""
    return await _open(gateway, None, None)


def transport_factory(tls: ssl.SSLContext | None) -> TransportFactory:
    """Return a TransportFactory whose TCP connections use TLS with ``tls``,
    if given, and whose wss:// connections verify the server with it."""

    async def open_with_tls(gateway: Gateway) -> Transport:
        return await _open(gateway, tls, tls)

    return open_with_tls


async def _open(
    gateway: Gateway, tcp_tls: ssl.SSLContext | None, ws_tls: ssl.SSLContext | None
) -> Transport:
    if gateway.transport == "tcp":
        return await TcpTransport.open(gateway.address, tcp_tls)
    if gateway.transport == "ws":
        return await WebSocketTransport.open(gateway.address, ws_tls)
    raise ConnectionBroken(
        f"unsupported transport {gateway.transport!r} for {gateway.address};"
        " use 'tcp' or 'ws'"
    )
