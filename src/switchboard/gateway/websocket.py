"""WebSocket transport for the gateway, served on the HTTP port at /v1/ws.

The HTTP listener passes each upgrade request for /v1/ws to :func:`upgrade`,
which completes the opening handshake and makes a :class:`WebSocketSession` the
transport's protocol. From then on the session reads and writes the transport
itself, like a TCP session, with the sans-I/O ``ServerProtocol`` of the
``websockets`` library for the handshake and the framing. No task runs per
connection.

Each binary message carries one or more whole frames, the same bytes as on
TCP. A text message is a protocol error. A message of more than
``max_frame_size + MESSAGE_MARGIN`` bytes fails the connection with close
code 1009 (message too big). The protocol answers pings with pongs by itself.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from websockets.exceptions import PayloadTooBig
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import SEND_EOF, State
from websockets.server import ServerProtocol

from switchboard.errors import ProtocolError
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.session import Session

__all__ = ["MESSAGE_MARGIN", "WEBSOCKET_PATH", "WebSocketSession", "upgrade"]

WEBSOCKET_PATH = b"/v1/ws"
"""Request path of the WebSocket endpoint, without the query string."""

MESSAGE_MARGIN = 16
"""Bytes a received message may hold beyond ``max_frame_size``: room for the
length prefix and type byte of a frame of the maximum size."""


class WebSocketSession(Session, asyncio.Protocol):
    """A session on a WebSocket connection whose opening handshake succeeded.

    Frames written in one pass of the event loop leave together, in binary
    messages of at most ``max_frame_size`` bytes. A single write larger than
    that leaves alone, in one message.
    """

    __slots__ = ("_outbox", "_outbox_size", "_transport", "_websocket")

    transport_name = "ws"

    def __init__(
        self,
        gateway: Gateway,
        transport: asyncio.Transport,
        websocket: ServerProtocol,
        peer: str,
    ) -> None:
        Session.__init__(self, gateway, peer)
        self._transport = transport
        self._websocket = websocket
        # Frames waiting for the flush scheduled by the first of them; None
        # when no flush is scheduled.
        self._outbox: list[bytes] | None = None
        self._outbox_size = 0

    # asyncio.Protocol callbacks.

    def data_received(self, data: bytes) -> None:
        websocket = self._websocket
        websocket.receive_data(data)
        for event in websocket.events_received():
            if self.closed:
                break
            # After the handshake the protocol returns nothing but frames.
            assert isinstance(event, Frame)
            self._receive_websocket_frame(event)
        if self.closed:
            return
        if websocket.state is not State.OPEN:
            self._fail_websocket()
            return
        # Pongs to the pings just received.
        self._write_protocol_output()

    def eof_received(self) -> bool:
        self.close("peer closed")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close("peer closed" if exc is None else f"connection lost: {exc}")

    # Session transport hooks.

    def write(self, data: bytes) -> None:
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = []
            asyncio.get_running_loop().call_soon(self._flush)
        outbox.append(data)
        self._outbox_size += len(data)

    def write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._outbox_size

    def close_transport(self) -> None:
        websocket = self._websocket
        if websocket.state is State.OPEN:
            self._flush()
            websocket.send_close(CloseCode.NORMAL_CLOSURE)
        self._write_protocol_output()
        self._transport.close()

    def abort_transport(self) -> None:
        self._outbox = None
        self._outbox_size = 0
        self._transport.abort()

    def set_reading(self, enabled: bool) -> None:
        transport = self._transport
        if transport.is_closing():
            return
        if enabled:
            transport.resume_reading()
        else:
            transport.pause_reading()

    # Inbound.

    def _receive_websocket_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.CONT:
            # The frame stream runs across messages and their fragments, as
            # it runs across reads on TCP. A fragment after a text frame never
            # gets here: the text frame closed the session.
            data = frame.data
            self.receive_data(data if isinstance(data, bytes) else bytes(data))
        elif opcode is Opcode.TEXT:
            error = ProtocolError(
                "text WebSocket message received; send frames as binary messages"
            )
            self._log_rejected(error.reason)
            self.send_and_close(self.protocol.fail(error), "protocol_error")
        elif opcode is Opcode.CLOSE:
            # The protocol queued the echo of the close frame.
            self.close("peer closed")
        # The protocol queued the pong to a ping; a pong needs nothing.

    def _fail_websocket(self) -> None:
        # The protocol failed the connection on a framing error, such as an
        # oversized message or an unmasked frame, and queued a close frame.
        exc = self._websocket.parser_exc
        self._log_rejected(f"WebSocket framing error: {exc}")
        reason = "message_too_big" if isinstance(exc, PayloadTooBig) else "ws_error"
        self.close(reason)

    def _log_rejected(self, reason: str) -> None:
        self.gateway.reject_log.warning(
            f"protocol:{self.host}",
            "protocol error conn=%d peer=%s user=%d: %s",
            self.connection_id,
            self.peer,
            self.user_id,
            reason,
        )

    # Outbound.

    def _flush(self) -> None:
        """Send the frames in the outbox as binary messages."""
        outbox, self._outbox = self._outbox, None
        self._outbox_size = 0
        if not outbox or self._websocket.state is not State.OPEN:
            return
        limit = self.gateway.settings.max_frame_size
        start, size = 0, len(outbox[0])
        for index in range(1, len(outbox)):
            part_size = len(outbox[index])
            if size + part_size > limit:
                self._websocket.send_binary(b"".join(outbox[start:index]))
                start, size = index, 0
            size += part_size
        self._websocket.send_binary(b"".join(outbox[start:]))
        self._write_protocol_output()

    def _write_protocol_output(self) -> None:
        """Write the bytes the WebSocket protocol queued to the transport.

        The protocol's end-of-stream marker is left out: the session closes
        the transport itself.
        """
        chunks = self._websocket.data_to_send()
        if not chunks or self._transport.is_closing():
            return
        data = b"".join(chunks)
        if data:
            self._transport.write(data)


def upgrade(
    gateway: Gateway, transport: asyncio.Transport, head: bytes, trailing: bytes
) -> None:
    """Complete the opening handshake in ``head`` and serve the connection.

    ``head`` is the whole request head, from the request line to the empty
    line, and ``trailing`` the bytes received after it. On success the
    transport's protocol becomes a new :class:`WebSocketSession`. The
    handshake is rejected with an HTTP error response, and the transport
    closed, when the request is not a valid handshake (400 and others, from
    ``websockets``) or when the gateway is draining (503). The caller must
    not use ``transport`` afterwards.
    """
    websocket = ServerProtocol(
        max_size=gateway.settings.max_frame_size + MESSAGE_MARGIN
    )
    websocket.receive_data(head)
    requests = [
        event for event in websocket.events_received() if isinstance(event, Request)
    ]
    peername = transport.get_extra_info("peername")
    peer = f"{peername[0]}:{peername[1]}" if peername else "?"
    if not requests:
        # websockets rejected the head that h11 accepted, such as a header
        # line above its length limit, and queued its response if any.
        _reject(gateway, transport, websocket, peer, websocket.handshake_exc)
        return

    request = requests[0]
    if gateway.draining:
        response = websocket.reject(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The gateway is draining. Get another gateway from GET /v1/gateways.\n",
        )
        response.headers["Retry-After"] = "1"
    else:
        response = websocket.accept(request)
    websocket.send_response(response)
    # The parser keeps a reference to the request. Its headers are the bulk
    # of it and are not needed after the handshake.
    request.headers.clear()
    if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
        reason = "gateway draining" if gateway.draining else websocket.handshake_exc
        _reject(gateway, transport, websocket, peer, reason)
        return

    transport.write(b"".join(websocket.data_to_send()))
    session = WebSocketSession(gateway, transport, websocket, peer)
    transport.set_protocol(session)
    if session.opened() and trailing:
        session.data_received(trailing)


def _reject(
    gateway: Gateway,
    transport: asyncio.Transport,
    websocket: ServerProtocol,
    peer: str,
    reason: object,
) -> None:
    host = peer.rpartition(":")[0]
    gateway.reject_log.warning(
        f"handshake:{host}",
        "rejected WebSocket handshake from %s: %s",
        peer,
        reason,
    )
    data = b"".join(chunk for chunk in websocket.data_to_send() if chunk != SEND_EOF)
    if data:
        transport.write(data)
    transport.close()
