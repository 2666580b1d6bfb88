"""The WebSocket transport in process: uvicorn's HTTP protocol, the upgrade and
the gateway's WebSocket session, on real sockets of 127.0.0.1.

A fake logic layer accepts every Connect, so tests can exchange frames
without a store.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import CloseCode
from websockets.protocol import State
from websockets.uri import parse_uri

from switchboard.api.listener import HttpServer
from switchboard.bus.base import Action, Inbound, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.errors import ErrorCode
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.websocket import MESSAGE_MARGIN
from switchboard.ids import DeviceId, UserId
from switchboard.protocol import pb
from switchboard.protocol.connection import (
    Connection,
    FrameReceived,
    HeartbeatReceived,
    Role,
)
from switchboard.protocol.frames import FrameType, encode
from switchboard.protocol.framing import HEARTBEAT, encode_frame, encode_varint
from tests.support.waiting import eventually

MAX_FRAME_SIZE = 4096
BURST_FRAMES = 40
"""Frames the fake logic layer sends after Connected when the device is "burst"."""


@dataclass
class Served:
    gateway: Gateway
    http: HttpServer
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"


def burst_frame(index: int) -> bytes:
    """Return a HeartbeatInterval frame of 300 bytes, padded with an unknown field."""
    padding = b"p" * 290
    payload = (
        pb.Heartbeat(interval=index + 1).SerializeToString()
        + encode_varint((100 << 3) | 2)
        + encode_varint(len(padding))
        + padding
    )
    return encode_frame(FrameType.HEARTBEAT_INTERVAL, payload)


async def serve(**overrides: object) -> Served:
    settings = Settings(
        http_host="127.0.0.1",
        http_port=0,
        heartbeat=10,
        auth_timeout=1,
        max_frame_size=MAX_FRAME_SIZE,
        max_body_size=3800,
        frame_rate=0,
        **overrides,  # type: ignore[arg-type]
    )
    bus = InProcessBus()
    gateway = Gateway("test", settings, bus)
    gateway.start()

    async def accept(item: Inbound) -> None:
        if item.frame_type != FrameType.CONNECT:
            return
        connect_frame = pb.Connect()
        connect_frame.ParseFromString(item.payload)
        bus.publish_outbound(
            Outbound(
                item.endpoint,
                encode(pb.Connected(user_id=7, heartbeat=10)),
                Action.ACCEPT,
                user_id=UserId(7),
                device=DeviceId(connect_frame.device),
                heartbeat=10,
            )
        )
        if connect_frame.device == "burst":
            for index in range(BURST_FRAMES):
                bus.publish_outbound(Outbound(item.endpoint, burst_frame(index)))

    bus.subscribe_inbound(accept)
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    http = HttpServer(app, settings, gateway)
    port = await http.start()
    return Served(gateway, http, port)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    server = await serve()
    yield server
    await server.http.stop()
    await server.gateway.stop()


def frames_of(message: bytes | str) -> list[FrameReceived]:
    assert isinstance(message, bytes), f"text message {message!r}"
    client = Connection(Role.CLIENT)
    client.send(pb.Connect())
    events = client.receive_data(message)
    return [event for event in events if isinstance(event, FrameReceived)]


async def authenticate(websocket: ClientConnection, device: str = "phone") -> None:
    await websocket.send(encode(pb.Connect(version=1, token="t", device=device)))
    frames = frames_of(await asyncio.wait_for(websocket.recv(), 5))
    assert frames[0].type is FrameType.CONNECTED


async def assert_serves(served: Served) -> None:
    """Check that a new client still gets a heartbeat echoed."""
    async with connect(served.url, compression=None) as websocket:
        await authenticate(websocket)
        await websocket.send(HEARTBEAT)
        assert await asyncio.wait_for(websocket.recv(), 5) == HEARTBEAT


async def wait_for_connections(gateway: Gateway, count: int) -> None:
    await eventually(lambda: len(gateway) == count, within=5, interval=0.01)


async def test_handshake_registers_session(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        assert websocket.response is not None
        assert websocket.response.status_code == 101
        await wait_for_connections(served.gateway, 1)
        await authenticate(websocket)
    await wait_for_connections(served.gateway, 0)


async def test_one_message_carries_several_frames(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        message = (
            encode(pb.Connect(version=1, token="t", device="phone"))
            + encode(pb.Heartbeat(interval=20))
            + HEARTBEAT
        )
        await websocket.send(message)
        client = Connection(Role.CLIENT)
        client.send(pb.Connect())
        events: list[object] = []
        async with asyncio.timeout(5):
            while len(events) < 3:
                reply = await websocket.recv()
                assert isinstance(reply, bytes)
                events += client.receive_data(reply)
        # The heartbeat is echoed at once; the HeartbeatInterval waits for
        # Connected.
        assert isinstance(events[0], HeartbeatReceived)
        assert isinstance(events[1], FrameReceived)
        assert events[1].type is FrameType.CONNECTED
        assert isinstance(events[2], FrameReceived)
        assert events[2].type is FrameType.HEARTBEAT_INTERVAL


async def test_messages_never_exceed_frame_limit(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        await websocket.send(encode(pb.Connect(version=1, token="t", device="burst")))
        received = b""
        sizes = []
        expected = encode(pb.Connected(user_id=7, heartbeat=10)) + b"".join(
            burst_frame(index) for index in range(BURST_FRAMES)
        )
        async with asyncio.timeout(5):
            while len(received) < len(expected):
                message = await websocket.recv()
                assert isinstance(message, bytes)
                sizes.append(len(message))
                received += message
        assert received == expected
        assert max(sizes) <= MAX_FRAME_SIZE
        # Coalesced: far fewer messages than frames.
        assert len(sizes) < BURST_FRAMES // 2


async def test_text_message_is_protocol_error(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        await websocket.send("hello")
        frames = frames_of(await asyncio.wait_for(websocket.recv(), 5))
        error = frames[-1].message
        assert isinstance(error, pb.Error)
        assert error.code == ErrorCode.PROTOCOL_ERROR
        assert error.fatal
        await asyncio.wait_for(websocket.wait_closed(), 5)
        assert websocket.close_code == CloseCode.NORMAL_CLOSURE
    await wait_for_connections(served.gateway, 0)
    await assert_serves(served)


async def test_oversized_message_is_rejected(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        await authenticate(websocket)
        limit = MAX_FRAME_SIZE + MESSAGE_MARGIN
        # A message of exactly the limit passes the WebSocket layer.
        await websocket.send(HEARTBEAT * limit)
        echoed = b""
        async with asyncio.timeout(5):
            while len(echoed) < limit:
                message = await websocket.recv()
                assert isinstance(message, bytes)
                assert len(message) <= MAX_FRAME_SIZE
                echoed += message
        assert echoed == HEARTBEAT * limit
        await websocket.send(HEARTBEAT * (limit + 1))
        with pytest.raises(ConnectionClosedError) as caught:
            await asyncio.wait_for(websocket.recv(), 5)
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG
    await wait_for_connections(served.gateway, 0)
    await assert_serves(served)


async def test_ping_is_answered_with_pong(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        pong = await websocket.ping(b"are you there")
        latency = await asyncio.wait_for(pong, 5)
        assert latency >= 0
        await authenticate(websocket)


async def test_client_close_handshake_completes(served: Served) -> None:
    websocket = await connect(served.url, compression=None)
    await authenticate(websocket)
    await asyncio.wait_for(websocket.close(), 5)
    assert websocket.close_code == CloseCode.NORMAL_CLOSURE
    assert websocket.close_reason == ""
    await wait_for_connections(served.gateway, 0)
    await assert_serves(served)


async def test_server_close_sends_close_frame(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        await authenticate(websocket)
        await wait_for_connections(served.gateway, 1)
        served.gateway.send_reconnect(1.0, "test drain")
        frames = frames_of(await asyncio.wait_for(websocket.recv(), 5))
        assert frames[0].type is FrameType.RECONNECT
        await asyncio.wait_for(websocket.wait_closed(), 5)
        assert websocket.close_code == CloseCode.NORMAL_CLOSURE


async def test_draining_gateway_refuses_websocket(served: Served) -> None:
    served.gateway.stop_reading()
    with pytest.raises(InvalidStatus) as caught:
        await connect(served.url, compression=None, open_timeout=5)
    assert caught.value.response.status_code == 503
    assert len(served.gateway) == 0


async def test_other_upgrade_path_gets_404(served: Served) -> None:
    url = f"ws://127.0.0.1:{served.port}/v1/other"
    with pytest.raises(InvalidStatus) as caught:
        await connect(url, compression=None, open_timeout=5)
    assert caught.value.response.status_code == 404
    await assert_serves(served)


async def test_server_without_gateway_gets_404() -> None:
    settings = Settings(http_host="127.0.0.1", http_port=0)
    http = HttpServer(FastAPI(), settings)
    port = await http.start()
    try:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{port}/v1/ws", open_timeout=5)
        assert caught.value.response.status_code == 404
    finally:
        await http.stop()


async def test_invalid_handshake_gets_400(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert response.startswith(b"HTTP/1.1 400 ")
    assert b"Sec-WebSocket-Key" in response
    await assert_serves(served)


async def test_partial_handshake_closed_at_deadline(served: Served) -> None:
    # auth_timeout 1 s is also the deadline for a request head.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    started = time.monotonic()
    closed_after = None
    async with asyncio.timeout(5):
        while closed_after is None:
            try:
                data = await asyncio.wait_for(reader.read(100), 0.3)
            except TimeoutError:
                writer.write(b"X")
                continue
            if data == b"":
                closed_after = time.monotonic() - started
    writer.close()
    assert 0.8 <= closed_after <= 2.5
    await assert_serves(served)


async def test_frames_sent_with_handshake_are_served(served: Served) -> None:
    client = ClientProtocol(parse_uri(served.url))
    client.send_request(client.connect())
    # Queue a frame before the response arrives, as no polite client does.
    client.state = State.OPEN
    client.send_binary(encode(pb.Connect(version=1, token="t", device="phone")))
    pipelined = b"".join(client.data_to_send())

    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(pipelined)
    received = b""
    async with asyncio.timeout(5):
        while (
            b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < 4
        ):
            chunk = await reader.read(4096)
            assert chunk, f"closed after {received!r}"
            received += chunk
    writer.close()
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    # One unmasked binary frame from the server: 0x82, a length, Connected.
    assert rest[0] == 0x82
    connected = encode(pb.Connected(user_id=7, heartbeat=10))
    assert rest[2 : 2 + len(connected)] == connected


async def test_address_cap_sends_error_frame() -> None:
    server = await serve(max_connections_per_ip=1)
    try:
        async with connect(server.url, compression=None) as first:
            await authenticate(first)
            async with connect(server.url, compression=None) as second:
                frames = frames_of(await asyncio.wait_for(second.recv(), 5))
                error = frames[0].message
                assert isinstance(error, pb.Error)
                assert error.code == ErrorCode.TOO_MANY_CONNECTIONS
                await asyncio.wait_for(second.wait_closed(), 5)
            await first.send(HEARTBEAT)
            assert await asyncio.wait_for(first.recv(), 5) == HEARTBEAT
    finally:
        await server.http.stop()
        await server.gateway.stop()


async def test_upgrade_frees_http_protocol(served: Served) -> None:
    async with connect(served.url, compression=None) as websocket:
        await authenticate(websocket)
        gc.collect()
        protocols = [obj for obj in gc.get_objects() if isinstance(obj, H11Protocol)]
        # Neither uvicorn nor a deadline timer keeps it once the gateway
        # owns the connection.
        assert protocols == []
