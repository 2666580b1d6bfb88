"""ChatService handling several Connects at once, as a cluster's logic worker does."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.bus.base import Action, Endpoint, Inbound, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic.auth import PLATFORMS, TOKEN_BYTES, AuthService, token_digest
from switchboard.logic.chat import ChatService
from switchboard.logic.routing import MemoryRoutingTable
from switchboard.protocol import pb
from switchboard.protocol.frames import PROTOCOL_VERSION, FrameType
from switchboard.store.base import Session
from switchboard.store.sqlite import SqliteStore

SLOTS = 4


class Harness:
    def __init__(
        self, store: SqliteStore, chat: ChatService, routing: MemoryRoutingTable
    ) -> None:
        self.store = store
        self.chat = chat
        self.routing = routing
        self.outbound: list[Outbound] = []

    async def device(self, name: str) -> tuple[UserId, str]:
        """Create user ``name`` with a token for device ``phone``."""
        user = await self.store.create_user(name, "x", 0)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = int(time.time() * 1000)
        await self.store.create_session(
            Session(
                token_hash=token_digest(token),
                user_id=user.id,
                device=DeviceId("phone"),
                platform=PLATFORMS["cli"],
                created_at=now,
                expires_at=now + 3_600_000,
            )
        )
        return user.id, token

    def actions(self, connection: int) -> list[Action]:
        return [
            item.action
            for item in self.outbound
            if item.endpoint.connection == connection
        ]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = Settings(data_dir=tmp_path, send_rate=0)
    store = SqliteStore(tmp_path / "switchboard.db")
    await store.open()
    bus = InProcessBus()
    routing = MemoryRoutingTable()
    auth = AuthService(store, settings)
    chat = ChatService(settings, store, bus, routing, auth, concurrent_connects=SLOTS)
    chat.start()
    result = Harness(store, chat, routing)
    bus.subscribe_outbound("gw", result.outbound.append)
    yield result
    await chat.wait_idle()
    await store.close()


def connect(connection: int, token: str) -> Inbound:
    frame = pb.Connect(version=PROTOCOL_VERSION, token=token, device="phone")
    return Inbound(
        Endpoint("gw", ConnectionId(connection)),
        FrameType.CONNECT,
        frame.SerializeToString(),
        UserId(0),
        DeviceId(""),
        0,
        "127.0.0.1:1",
    )


async def test_connects_run_in_bounded_tasks(harness: Harness) -> None:
    devices = [await harness.device(f"user{n}") for n in range(12)]
    max_tasks = 0
    for connection, (_, token) in enumerate(devices, start=1):
        await harness.chat.handle(connect(connection, token))
        max_tasks = max(max_tasks, len(harness.chat._tasks))

    await harness.chat.settled()

    assert 1 < max_tasks <= SLOTS
    for connection, (user_id, _) in enumerate(devices, start=1):
        assert harness.actions(connection) == [Action.ACCEPT]
        routes = await harness.routing.lookup(user_id)
        assert routes == {DeviceId("phone"): Endpoint("gw", ConnectionId(connection))}


async def test_connects_of_one_device_take_turns(harness: Harness) -> None:
    user_id, token = await harness.device("ann")

    # The second connection is newer; it must end up with the route.
    await harness.chat.handle(connect(1, token))
    await harness.chat.handle(connect(2, token))
    await harness.chat.settled()

    assert harness.actions(1) == [Action.ACCEPT, Action.CLOSE]
    assert harness.actions(2) == [Action.ACCEPT]
    routes = await harness.routing.lookup(user_id)
    assert routes == {DeviceId("phone"): Endpoint("gw", ConnectionId(2))}
    assert harness.chat._connecting == {}
