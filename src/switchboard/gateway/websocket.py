"""WebSocket transport for the gateway, served on the HTTP port at /v1/ws.

Each binary message carries one or more whole frames, the same bytes as on
TCP. A text message is a protocol error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard.errors import ProtocolError
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.session import Session

__all__ = ["WebSocketSession", "serve_websocket"]


class WebSocketSession(Session):
    """A session on a WebSocket; a writer task drains its outbound queue."""

    __slots__ = (
        "_closing",
        "_outbox",
        "_outbox_bytes",
        "_reading",
        "_ready",
        "_websocket",
    )

    transport_name = "ws"

    def __init__(self, gateway: Gateway, websocket: WebSocket) -> None:
        client = websocket.client
        peer = f"{client.host}:{client.port}" if client else "?"
        super().__init__(gateway, peer)
        self._websocket = websocket
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self._ready = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()
        self._closing = False

    def write(self, data: bytes) -> None:
        self._outbox.append(data)
        self._outbox_bytes += len(data)
        self._ready.set()

    def write_buffer_size(self) -> int:
        return self._outbox_bytes

    def close_transport(self) -> None:
        self._closing = True
        self._ready.set()
        self._reading.set()

    def abort_transport(self) -> None:
        self._outbox.clear()
        self._outbox_bytes = 0
        self.close_transport()

    def set_reading(self, enabled: bool) -> None:
        if enabled:
            self._reading.set()
        else:
            self._reading.clear()

    def _take_message(self) -> bytes:
        # Frames written together leave in one WebSocket message, up to the
        # frame size limit, so clients can cap messages at that size.
        limit = self.gateway.settings.max_frame_size
        parts = [self._outbox.popleft()]
        size = len(parts[0])
        while self._outbox and size + len(self._outbox[0]) <= limit:
            part = self._outbox.popleft()
            parts.append(part)
            size += len(part)
        self._outbox_bytes -= size
        return b"".join(parts)

    async def run_writer(self) -> None:
        """Send queued frames until the session closes; then close the socket."""
        websocket = self._websocket
        with contextlib.suppress(Exception):
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._outbox:
                    await websocket.send_bytes(self._take_message())
                if self._closing:
                    break
            await websocket.close()

    async def run_reader(self) -> None:
        """Feed received messages to the session until either side closes."""
        websocket = self._websocket
        try:
            while not self.closed:
                await self._reading.wait()
                if self.closed:
                    break
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    self.close("peer closed")
                    break
                data = message.get("bytes")
                if data is None:
                    error = ProtocolError(
                        "text WebSocket message received; send frames as binary"
                        " messages"
                    )
                    self.send_and_close(self.protocol.fail(error), "protocol_error")
                    break
                self.receive_data(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            self.close(f"connection lost: {exc!r}")


async def serve_websocket(gateway: Gateway, websocket: WebSocket) -> None:
    """Run one WebSocket client connection to its end."""
    if gateway.draining:
        await websocket.close(code=1013)
        return
    await websocket.accept()
    session = WebSocketSession(gateway, websocket)
    if not session.opened():
        await session.run_writer()
        return
    reader = asyncio.create_task(session.run_reader())
    writer = asyncio.create_task(session.run_writer())
    try:
        # The writer ends once the session closes, whichever side closed it;
        # the reader may still wait for a peer that never replies.
        await writer
    finally:
        session.close("peer closed")
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
