"""Black-holed (half-open) connections are closed and forgotten by the server.

The server's parts run in the test's event loop, so the test can read the
gateway's, routing table's and chat service's bookkeeping directly. Clients
connect through the chaos proxy, which then black-holes them: the server
hears nothing more and the client hears nothing either, not even the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from switchboard.bus.memory import InProcessBus
from switchboard.chaos import ChaosProxy
from switchboard.config import Settings
from switchboard.gateway.gateway import TICK, Gateway, GatewayStats
from switchboard.gateway.tcp import start_tcp_server
from switchboard.logic.auth import AuthService
from switchboard.logic.chat import ChatService
from switchboard.logic.routing import MemoryRoutingTable
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, FrameReceived, Role
from switchboard.protocol.framing import HEARTBEAT
from switchboard.store.sqlite import SqliteStore

HEARTBEAT_INTERVAL = 2
TIMEOUT = HEARTBEAT_INTERVAL * 1.5
"""The server closes a connection silent for 1.5 heartbeat intervals."""
SLACK = 1.5
"""Extra seconds allowed on a loaded machine."""
EMPTY = GatewayStats(0, 0, 0, 0)


@dataclass
class InProcessServer:
    auth: AuthService
    chat: ChatService
    gateway: Gateway
    routing: MemoryRoutingTable
    address: tuple[str, int]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    settings = Settings(
        data_dir=tmp_path,
        heartbeat=HEARTBEAT_INTERVAL,
        min_heartbeat=1,
        send_rate=0,
        frame_rate=0,
    )
    store = SqliteStore(tmp_path / "switchboard.db")
    await store.open()
    bus = InProcessBus()
    routing = MemoryRoutingTable()
    auth = AuthService(store, settings)
    chat = ChatService(settings, store, bus, routing, auth)
    chat.start()
    gateway = Gateway("gw-test", settings, bus)
    gateway.start()
    listener = await start_tcp_server(gateway, "127.0.0.1", 0)
    address = listener.sockets[0].getsockname()[:2]
    yield InProcessServer(auth, chat, gateway, routing, address)
    listener.close()
    await gateway.stop()
    await bus.close()
    await store.close()


class FrameClient:
    """A client on asyncio streams that speaks raw frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.protocol = Connection(Role.CLIENT)

    @classmethod
    async def connect(
        cls, address: tuple[str, int], token: str, device: str
    ) -> FrameClient:
        reader, writer = await asyncio.open_connection(*address)
        client = cls(reader, writer)
        connect = pb.Connect(version=1, token=token, device=device, platform=5)
        writer.write(client.protocol.send(connect))
        async with asyncio.timeout(10):
            while True:
                data = await reader.read(65536)
                assert data, "closed before Connected"
                events = client.protocol.receive_data(data)
                if any(isinstance(e, FrameReceived) for e in events):
                    return client

    def close(self) -> None:
        self.writer.close()

    async def heartbeat(self) -> None:
        self.writer.write(HEARTBEAT)
        await self.writer.drain()

    async def read_nothing_for(self, seconds: float) -> None:
        """Fail if any byte or the close arrives within ``seconds``."""
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(seconds):
                data = await self.reader.read(65536)
                raise AssertionError(f"received {data!r} on a black-holed link")


async def login(server: InProcessServer, name: str) -> str:
    await server.auth.create_account(name, "password-" + name)
    result = await server.auth.login(name, "password-" + name, "d1", "cli")
    return result.token


async def wait_until(condition: object, timeout: float) -> float:  # noqa: ASYNC109
    """Poll ``condition`` until true; return the seconds it took."""
    assert callable(condition)
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the server has no event for it
            await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_blackholed_clients_closed_and_freed(server: InProcessServer) -> None:
    proxy = ChaosProxy(server.address)
    await proxy.start()
    tokens = [await login(server, f"user{i}") for i in range(10)]
    clients = [await FrameClient.connect(proxy.address, t, "d1") for t in tokens]
    stats = server.gateway.stats()
    assert stats.connections == 10
    assert stats.wheel_entries == 10
    assert len(server.routing) == 10

    assert proxy.blackhole_all() == 10
    took = await wait_until(lambda: server.gateway.stats() == EMPTY, TIMEOUT + 10)

    assert took <= TIMEOUT + TICK + SLACK
    # The last frame reached the server before the black hole, so the close
    # cannot come much sooner than the timeout after it.
    assert took >= TIMEOUT - TICK
    await wait_until(lambda: len(server.routing) == 0, 2)
    assert server.chat.tracked_connections == 0
    await clients[0].read_nothing_for(0.5)
    for client in clients:
        client.close()
    await proxy.close()


async def test_heartbeating_client_stays_open(server: InProcessServer) -> None:
    proxy = ChaosProxy(server.address)
    await proxy.start()
    silent = await FrameClient.connect(proxy.address, await login(server, "a"), "d1")
    direct = await FrameClient.connect(server.address, await login(server, "b"), "d1")
    proxy.blackhole_all()

    started = time.monotonic()
    while time.monotonic() - started < TIMEOUT + TICK + SLACK:
        await direct.heartbeat()
        await asyncio.sleep(0.5)

    assert server.gateway.stats() == GatewayStats(1, 1, 1, 1)
    assert len(server.routing) == 1
    await silent.read_nothing_for(0.1)
    silent.close()
    direct.close()
    await proxy.close()


async def test_close_during_connect_frees_route(server: InProcessServer) -> None:
    # The client closes right after Connect, so the connection is gone by the
    # time the logic layer has authenticated it and added its route.
    token = await login(server, "alice")
    for _ in range(5):
        _, writer = await asyncio.open_connection(*server.address)
        connect = pb.Connect(version=1, token=token, device="d1", platform=5)
        writer.write(Connection(Role.CLIENT).send(connect))
        await writer.drain()
        writer.close()

    await wait_until(lambda: server.gateway.stats() == EMPTY, 5)
    await wait_until(lambda: len(server.routing) == 0, 5)
    assert server.chat.tracked_connections == 0


async def read_frames(
    reader: asyncio.StreamReader, protocol: Connection, seconds: float
) -> list[object]:
    """Return the frames that arrive within ``seconds``, until the close."""
    frames: list[object] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while data := await reader.read(65536):
                for event in protocol.receive_data(data):
                    if isinstance(event, FrameReceived):
                        frames.append(event.message)
    return frames


async def test_stale_connect_cannot_take_over(server: InProcessServer) -> None:
    # A Connect that an older connection delivers late, after the device gave
    # up on it and connected again, must not close the device's newer one.
    token = await login(server, "alice")
    stale_reader, stale_writer = await asyncio.open_connection(*server.address)
    live = await FrameClient.connect(server.address, token, "d1")
    stale_protocol = Connection(Role.CLIENT)
    connect = pb.Connect(version=1, token=token, device="d1", platform=5)
    stale_writer.write(stale_protocol.send(connect))

    stale_frames = await read_frames(stale_reader, stale_protocol, 2)
    live_frames = await read_frames(live.reader, live.protocol, 0.5)

    assert [type(f).__name__ for f in stale_frames] == ["Error"]
    assert live_frames == []
    assert server.gateway.stats().connections == 1
    stale_writer.close()
    live.close()
