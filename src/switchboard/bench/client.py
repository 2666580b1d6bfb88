"""A lean raw-frame client for the load generator, over TCP or WebSocket.

Each :class:`FrameClient` is an asyncio protocol around the sans-IO
``switchboard.protocol.Connection`` in the client role. Over WebSocket it
wraps frames in binary messages with the sans-IO ``websockets`` client
protocol. It keeps no outbox, no inbox and no retry logic, unlike the SDK:
scenario code reacts to frames through a :class:`Listener` and decides what
to send. Byte counters count what crosses the socket, so they include
WebSocket handshake and framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

from google.protobuf.message import Message as ProtobufMessage
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from switchboard.bench.accounts import Credential
from switchboard.errors import ErrorCode, ProtocolError
from switchboard.protocol import pb
from switchboard.protocol.connection import (
    Connection,
    FrameReceived,
    HeartbeatReceived,
    Role,
)
from switchboard.protocol.frames import PROTOCOL_VERSION, FrameType
from switchboard.protocol.framing import HEARTBEAT

__all__ = [
    "ConnectFailed",
    "Endpoints",
    "FrameClient",
    "Listener",
    "connect_transport",
    "open_client",
]

WS_MAX_MESSAGE = 16 * 1024 * 1024
"""Largest WebSocket message accepted, as in the SDK."""


class ConnectFailed(Exception):
    """Opening a connection or authenticating on it failed."""

    def __init__(self, reason: str, code: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Addresses of the gateways of the server under test."""

    tcp_host: str
    tcp_port: int
    ws_url: str


class Listener:
    """Callbacks for the frames a client receives; the defaults do nothing."""

    def on_message(self, client: FrameClient, message: pb.Message) -> None:
        pass

    def on_send_ack(self, client: FrameClient, ack: pb.SendAck) -> None:
        pass

    def on_sync_response(self, client: FrameClient, page: pb.SyncResponse) -> None:
        pass

    def on_heartbeat(self, client: FrameClient) -> None:
        pass

    def on_error(self, client: FrameClient, error: pb.Error) -> None:
        pass

    def after_batch(self, client: FrameClient) -> None:
        """Run after the frames of one read are handled: a place to reply."""

    def on_lost(self, client: FrameClient) -> None:
        pass


NO_LISTENER: Final = Listener()


class FrameClient(asyncio.Protocol):
    """One connection of the load generator, authenticated with a Credential."""

    __slots__ = (
        "_handshake",
        "_heartbeat_handle",
        "_ws",
        "bytes_received",
        "bytes_sent",
        "connected",
        "credential",
        "errors",
        "head_seq",
        "heartbeat_sent_at",
        "heartbeats_received",
        "heartbeats_sent",
        "listener",
        "lost",
        "protocol",
        "transport",
    )

    def __init__(
        self,
        credential: Credential,
        listener: Listener = NO_LISTENER,
        ws_url: str | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.credential = credential
        self.listener = listener
        self.protocol = Connection(Role.CLIENT)
        self.transport: asyncio.Transport | None = None
        self._ws: ClientProtocol | None = None
        if ws_url:
            self._ws = ClientProtocol(parse_uri(ws_url), max_size=WS_MAX_MESSAGE)
        self._handshake: asyncio.Future[None] = loop.create_future()
        self.connected: asyncio.Future[pb.Connected] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.head_seq = 0
        """Highest inbox sequence number seen on this connection."""
        self.bytes_sent = 0
        self.bytes_received = 0
        self.heartbeats_sent = 0
        self.heartbeats_received = 0
        self.heartbeat_sent_at = 0
        """time.monotonic_ns() of the last heartbeat sent; 0 once echoed."""
        self.errors: dict[int, int] = {}
        """Error frames received, by code."""
        self._heartbeat_handle: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        if self._ws is None:
            self._handshake.set_result(None)
            return
        self._ws.send_request(self._ws.connect())
        self._write_ws_output()

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if self._ws is None:
            self._receive_frames(data)
        else:
            self._receive_ws(data)

    def eof_received(self) -> bool:
        if self._ws is not None:
            self._ws.receive_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_heartbeats()
        reason = "connection closed" if exc is None else f"connection lost: {exc}"
        for future in (self._handshake, self.connected):
            if not future.done():
                future.set_exception(ConnectFailed(reason))
                # Retrieved here so that an unawaited failure logs nothing.
                future.exception()
        if not self.lost.done():
            self.lost.set_result(None)
        self.listener.on_lost(self)

    # Receiving.

    def _receive_ws(self, data: bytes) -> None:
        ws = self._ws
        assert ws is not None
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                self._on_ws_response(event)
            elif isinstance(event, Frame) and event.opcode in (
                Opcode.BINARY,
                Opcode.CONT,
            ):
                self._receive_frames(bytes(event.data))
        self._write_ws_output()

    def _on_ws_response(self, response: Response) -> None:
        ws = self._ws
        assert ws is not None
        if self._handshake.done():
            return
        if ws.handshake_exc is not None:
            self._handshake.set_exception(
                ConnectFailed(f"WebSocket handshake failed: {ws.handshake_exc}")
            )
        else:
            self._handshake.set_result(None)

    def _receive_frames(self, data: bytes) -> None:
        try:
            events = self.protocol.receive_data(data)
        except ProtocolError as exc:
            self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
            self.abort()
            return
        listener = self.listener
        for event in events:
            if isinstance(event, HeartbeatReceived):
                self.heartbeats_received += 1
                listener.on_heartbeat(self)
                self.heartbeat_sent_at = 0
                continue
            assert isinstance(event, FrameReceived)
            self._receive_frame(event, listener)
        listener.after_batch(self)

    def _receive_frame(self, event: FrameReceived, listener: Listener) -> None:
        message = event.message
        frame_type = event.type
        if frame_type is FrameType.MESSAGE:
            assert isinstance(message, pb.Message)
            if message.seq > self.head_seq:
                self.head_seq = message.seq
            listener.on_message(self, message)
        elif frame_type is FrameType.SEND_ACK:
            assert isinstance(message, pb.SendAck)
            if message.seq > self.head_seq:
                self.head_seq = message.seq
            listener.on_send_ack(self, message)
        elif frame_type is FrameType.CONNECTED:
            assert isinstance(message, pb.Connected)
            self.head_seq = max(self.head_seq, message.head_seq)
            if not self.connected.done():
                self.connected.set_result(message)
        elif frame_type is FrameType.SYNC_RESPONSE:
            assert isinstance(message, pb.SyncResponse)
            listener.on_sync_response(self, message)
        elif frame_type is FrameType.ERROR:
            assert isinstance(message, pb.Error)
            self._on_error(message, listener)

    def _on_error(self, error: pb.Error, listener: Listener) -> None:
        self.errors[error.code] = self.errors.get(error.code, 0) + 1
        if error.fatal and not self.connected.done():
            self.connected.set_exception(
                ConnectFailed(
                    f"server rejected Connect with {_code_name(error.code)}:"
                    f" {error.reason}",
                    error.code,
                )
            )
            self.connected.exception()
        listener.on_error(self, error)

    # Sending.

    def write(self, data: bytes) -> None:
        """Send whole frames; over WebSocket they go in one binary message."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._ws is None:
            self.bytes_sent += len(data)
            transport.write(data)
        elif self._ws.state is State.OPEN:
            # A WebSocket in its closing handshake takes no more data frames.
            self._ws.send_binary(data)
            self._write_ws_output()

    def _write_ws_output(self) -> None:
        ws = self._ws
        transport = self.transport
        assert ws is not None
        output = ws.data_to_send()
        if not output or transport is None or transport.is_closing():
            return
        data = b"".join(output)
        self.bytes_sent += len(data)
        transport.write(data)

    def send(self, message: ProtobufMessage) -> None:
        """Encode ``message`` as a frame and send it."""
        self.write(self.protocol.send(message))

    async def ready(self) -> None:
        """Wait until the transport carries frames: after the WebSocket handshake."""
        await self._handshake

    async def authenticate(self, last_seq: int = 0, heartbeat: int = 0) -> pb.Connected:
        """Send Connect once the transport is up and wait for Connected.

        Raises ConnectFailed when the server rejects Connect or closes the
        connection. The caller bounds the wait with ``asyncio.timeout``.
        """
        await self._handshake
        self.send(
            pb.Connect(
                version=PROTOCOL_VERSION,
                token=self.credential.token,
                device=self.credential.device,
                platform=pb.PLATFORM_CLI,
                last_seq=last_seq,
                heartbeat=heartbeat,
            )
        )
        return await self.connected

    def heartbeat(self) -> None:
        """Send one heartbeat frame and note when, for the echo's round trip."""
        self.heartbeats_sent += 1
        self.heartbeat_sent_at = time.monotonic_ns()
        self.write(HEARTBEAT)

    def schedule_heartbeats(self, interval: float, first: float) -> None:
        """Send a heartbeat ``first`` seconds from now and every ``interval`` after."""
        self.cancel_heartbeats()
        loop = asyncio.get_running_loop()
        self._heartbeat_handle = loop.call_later(first, self._tick, interval)

    def _tick(self, interval: float) -> None:
        self.heartbeat()
        loop = asyncio.get_running_loop()
        self._heartbeat_handle = loop.call_later(interval, self._tick, interval)

    def cancel_heartbeats(self) -> None:
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None

    def abort(self) -> None:
        """Drop the connection at once (a TCP reset), as a lost network would."""
        self.cancel_heartbeats()
        if self.transport is not None:
            self.transport.abort()

    @property
    def is_open(self) -> bool:
        return (
            self.connected.done()
            and not self.connected.cancelled()
            and self.connected.exception() is None
            and not self.lost.done()
        )


def _code_name(code: int) -> str:
    with contextlib.suppress(ValueError):
        return ErrorCode(code).name
    return str(code)


async def connect_transport(
    credential: Credential,
    endpoints: Endpoints,
    transport: str,
    listener: Listener = NO_LISTENER,
) -> FrameClient:
    """Open a TCP connection, and the WebSocket handshake for ``ws``.

    Returns a client ready for :meth:`FrameClient.authenticate`. Raises
    ConnectFailed, or OSError when the TCP connection fails.
    """
    loop = asyncio.get_running_loop()
    if transport == "tcp":
        client = FrameClient(credential, listener)
        host, port = endpoints.tcp_host, endpoints.tcp_port
    else:
        client = FrameClient(credential, listener, endpoints.ws_url)
        parts = urlsplit(endpoints.ws_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
    try:
        await loop.create_connection(lambda: client, host, port)
        await client.ready()
    except BaseException:
        client.abort()
        raise
    return client


async def open_client(
    credential: Credential,
    endpoints: Endpoints,
    transport: str,
    listener: Listener = NO_LISTENER,
    *,
    last_seq: int = 0,
    heartbeat: int = 0,
) -> FrameClient:
    """Connect to a gateway over ``transport`` (tcp or ws) and authenticate.

    Raises ConnectFailed, or OSError when the TCP connection fails. The
    caller bounds the time with ``asyncio.timeout``; a connection that does
    not finish is aborted.
    """
    client = await connect_transport(credential, endpoints, transport, listener)
    try:
        await client.authenticate(last_seq, heartbeat)
    except BaseException:
        client.abort()
        raise
    return client
