"""Conversation lists in the logic layer: previews, frame budgets, Connect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.bus.base import Endpoint, Inbound, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.ids import ConnectionId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.logic.auth import AuthService, token_digest
from switchboard.logic.chat import ChatService
from switchboard.logic.conversations import (
    PREVIEW_BYTES,
    conversation_list,
    preview,
)
from switchboard.logic.routing import MemoryRoutingTable
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType, encode
from switchboard.protocol.framing import FrameDecoder
from switchboard.store.base import (
    Conversation,
    ConversationKey,
    ConversationPage,
    InboxEntry,
    Session,
    StoredMessage,
)
from switchboard.store.sqlite import SqliteStore

TEXT = 0
MEDIA = 1

# Previews.


@given(st.text())
def test_preview_is_a_whole_character_prefix(text: str) -> None:
    body = text.encode()

    cut, truncated = preview(TEXT, body)

    assert body.startswith(cut)
    assert len(cut) <= PREVIEW_BYTES
    assert cut.decode() == text[: len(cut.decode())]
    assert truncated == (len(body) > PREVIEW_BYTES)
    if truncated:
        # No further whole character would have fit.
        next_char = text[len(cut.decode())]
        assert len(cut) + len(next_char.encode()) > PREVIEW_BYTES


def test_preview_keeps_short_text() -> None:
    assert preview(TEXT, b"hello") == (b"hello", False)


def test_preview_keeps_other_bodies_whole() -> None:
    body = b"{" + b"x" * 1000 + b"}"

    assert preview(MEDIA, body) == (body, False)


# Frame budgets.


def conversation(index: int, body: bytes, content_type: int = MEDIA) -> Conversation:
    message = StoredMessage(
        id=MessageId(1000 - index),
        sender=UserId(2),
        recipient=UserId(1),
        content_type=content_type,
        body=body,
        sent_at=1_796_385_600_000,
    )
    return Conversation(
        key=ConversationKey(peer=UserId(100 + index)),
        name=f"user{index}",
        last=InboxEntry(Seq(500 - index), message, unread=3),
        unread=3,
        read_id=MessageId(0),
        peer_read_id=MessageId(0),
    )


def page_of(*conversations: Conversation, has_more: bool = False) -> ConversationPage:
    return ConversationPage(
        list(conversations), has_more=has_more, head_seq=Seq(500), total_unread=42
    )


def test_list_stops_before_the_frame_limit() -> None:
    page = page_of(*(conversation(i, b"x" * 1000) for i in range(10)))

    response = conversation_list(page, 0, 4096)

    assert len(encode(response)) <= 4096
    assert 1 <= len(response.conversations) < 10
    assert response.has_more is True
    assert [c.name for c in response.conversations] == [
        f"user{i}" for i in range(len(response.conversations))
    ]
    assert response.total_unread == 42
    assert response.head_seq == 500


def test_list_keeps_has_more_of_the_page() -> None:
    page = page_of(conversation(0, b"hi"), has_more=True)

    response = conversation_list(page, 77, 65536)

    assert len(response.conversations) == 1
    assert response.has_more is True
    assert response.before == 77


def test_oversized_conversation_loses_its_body() -> None:
    page = page_of(conversation(0, b"x" * 5000))

    response = conversation_list(page, 0, 4096)

    [item] = response.conversations
    assert item.last.body == b""
    assert item.truncated is True
    assert len(encode(response)) <= 4096
    assert response.has_more is False


def test_list_entry_fields() -> None:
    text = "é" * 200
    page = page_of(conversation(0, text.encode(), content_type=TEXT))

    [item] = conversation_list(page, 0, 65536).conversations

    assert item.peer == 100
    assert item.group == 0
    assert item.name == "user0"
    assert item.unread == 3
    assert item.truncated is True
    assert item.last.body == ("é" * (PREVIEW_BYTES // 2)).encode()
    assert item.last.seq == 500
    assert item.last.id == 1000
    assert item.last.unread == 0


# The chat service: Connect with a conversation list, and Conversations frames.


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

    async def login(self, user_id: UserId, device: str) -> str:
        token = f"token-{user_id}-{device}"
        session = Session(token_digest(token), user_id, DeviceId(device), 1, 0, 2**62)
        await self.store.create_session(session)
        return token


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


def inbound(
    connection: int, frame_type: FrameType, payload: bytes, user: int = 0
) -> Inbound:
    device = DeviceId("phone" if user else "")
    return Inbound(
        Endpoint("gw", ConnectionId(connection)),
        frame_type,
        payload,
        UserId(user),
        device,
        1,
        "127.0.0.1:1",
    )


async def test_connect_sends_list_after_connected(harness: Harness) -> None:
    store = harness.store
    ann = await store.create_user("ann", "x", 0)
    bob = await store.create_user("bob", "x", 0)
    for client_id in (1, 2):
        await store.append_message(
            ann.id, DeviceId("phone"), client_id, bob.id, TEXT, b"hi", 5
        )
    token = await harness.login(bob.id, "phone")
    connect = pb.Connect(version=1, token=token, device="phone", conversations=10)

    await harness.chat.handle(
        inbound(1, FrameType.CONNECT, connect.SerializeToString())
    )

    [(first, payload), (second, list_payload)] = harness.frames(1)
    assert first == FrameType.CONNECTED
    connected = pb.Connected.FromString(payload)
    assert [m.unread for m in connected.sync.messages] == [1, 2]
    assert second == FrameType.CONVERSATION_LIST
    listing = pb.ConversationList.FromString(list_payload)
    assert listing.head_seq == connected.head_seq == 2
    assert listing.total_unread == 2
    [item] = listing.conversations
    assert (item.peer, item.name, item.unread) == (ann.id, "ann", 2)


async def test_connect_without_list_sends_none(harness: Harness) -> None:
    bob = await harness.store.create_user("bob", "x", 0)
    token = await harness.login(bob.id, "phone")
    connect = pb.Connect(version=1, token=token, device="phone")

    await harness.chat.handle(
        inbound(1, FrameType.CONNECT, connect.SerializeToString())
    )

    assert [t for t, _ in harness.frames(1)] == [FrameType.CONNECTED]


async def test_conversations_frame_pages(harness: Harness) -> None:
    store = harness.store
    bob = await store.create_user("bob", "x", 0)
    for name in ("ann", "cid", "dee"):
        user = await store.create_user(name, "x", 0)
        await store.append_message(user.id, DeviceId("p"), 1, bob.id, TEXT, b"hi", 5)
    group = await store.create_group("team", bob.id, [], 6, max_members=10)
    await store.append_group_message(
        bob.id, DeviceId("p"), 1, GroupId(group.group.id), TEXT, b"note", 7
    )

    request = pb.ConversationsRequest(limit=2)
    await harness.chat.handle(
        inbound(1, FrameType.CONVERSATIONS, request.SerializeToString(), bob.id)
    )
    [(frame_type, payload)] = harness.frames(1)
    first = pb.ConversationList.FromString(payload)
    before = first.conversations[-1].last.id
    request = pb.ConversationsRequest(limit=2, before=before)
    await harness.chat.handle(
        inbound(2, FrameType.CONVERSATIONS, request.SerializeToString(), bob.id)
    )
    [(_, payload)] = harness.frames(2)
    second = pb.ConversationList.FromString(payload)

    assert frame_type == FrameType.CONVERSATION_LIST
    assert [c.name for c in first.conversations] == ["team", "dee"]
    assert first.conversations[0].group == group.group.id
    assert first.has_more is True
    assert [c.name for c in second.conversations] == ["cid", "ann"]
    assert second.has_more is False
    assert second.before == before
    assert first.total_unread == second.total_unread == 3
