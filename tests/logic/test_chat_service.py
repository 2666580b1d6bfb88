"""ChatService with the real SQLite store and bus, without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.bus.base import Action, Endpoint, Inbound, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic import chat as chat_module
from switchboard.logic.auth import AuthService
from switchboard.logic.chat import ChatService
from switchboard.logic.routing import MemoryRoutingTable
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from switchboard.protocol.framing import FrameDecoder
from switchboard.store.sqlite import SqliteStore


class Harness:
    def __init__(self, store: SqliteStore, chat: ChatService) -> None:
        self.store = store
        self.chat = chat
        self.outbound: list[Outbound] = []

    def frames(self, connection: int) -> list[tuple[int, bytes]]:
        decoder = FrameDecoder(1 << 24)
        data = b"".join(
            item.data
            for item in self.outbound
            if item.endpoint.connection == connection
        )
        return decoder.feed(data)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = Settings(data_dir=tmp_path, send_rate=0)
    store = SqliteStore(tmp_path / "switchboard.db")
    await store.open()
    bus = InProcessBus()
    auth = AuthService(store, settings)
    chat = ChatService(settings, store, bus, MemoryRoutingTable(), auth)
    chat.start()
    result = Harness(store, chat)
    bus.subscribe_outbound("gw", result.outbound.append)
    yield result
    await chat.wait_idle()
    await store.close()


def inbound(connection: int, user: int, frame: pb.Send) -> Inbound:
    return Inbound(
        Endpoint("gw", ConnectionId(connection)),
        FrameType.SEND,
        frame.SerializeToString(),
        UserId(user),
        DeviceId("d"),
        0,
        "127.0.0.1:1",
    )


async def test_sends_in_flight_are_bounded(harness: Harness) -> None:
    ann = await harness.store.create_user("ann", "x", 0)
    bob = await harness.store.create_user("bob", "x", 0)
    most = 0
    for client_id in range(1, 2001):
        send = pb.Send(to=bob.id, client_id=client_id, body=b"x")
        await harness.chat.handle(inbound(1, ann.id, send))
        most = max(most, len(harness.chat._tasks))
    assert most <= chat_module.MAX_IN_FLIGHT
    await harness.chat.wait_idle()
    acks = [
        pb.SendAck.FromString(p)
        for t, p in harness.frames(1)
        if t == FrameType.SEND_ACK
    ]
    assert [ack.client_id for ack in acks] == list(range(1, 2001))
    assert [ack.seq for ack in acks] == list(range(1, 2001))


async def test_sync_page_fits_in_one_frame(harness: Harness) -> None:
    ann = await harness.store.create_user("ann", "x", 0)
    bob = await harness.store.create_user("bob", "x", 0)
    body = b"y" * 16 * 1024
    for client_id in range(1, 11):
        send = pb.Send(to=bob.id, client_id=client_id, body=body)
        await harness.chat.handle(inbound(1, ann.id, send))
    await harness.chat.wait_idle()
    request = pb.SyncRequest(after_seq=0, limit=10)
    item = Inbound(
        Endpoint("gw", ConnectionId(2)),
        FrameType.SYNC,
        request.SerializeToString(),
        bob.id,
        DeviceId("d"),
        0,
        "127.0.0.1:2",
    )
    await harness.chat.handle(item)
    [(frame_type, payload)] = harness.frames(2)
    assert frame_type == FrameType.SYNC_RESPONSE
    assert len(payload) + 1 <= Settings().max_frame_size
    response = pb.SyncResponse.FromString(payload)
    assert response.has_more
    assert 1 <= len(response.messages) < 10
    assert [m.seq for m in response.messages] == list(
        range(1, len(response.messages) + 1)
    )
    assert all(item.action is Action.NONE for item in harness.outbound)
