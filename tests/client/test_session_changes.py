"""Client session and changes, against the scripted gateway of test_session.py.

Reads, recalls, edits and deletes over the socket: resends after a lost
connection, rejections, retries, the conversation list after Connected and
the events a client hands out.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from switchboard.client import (
    ChangeRejected,
    ConversationRead,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageRecalled,
    ReadReceipt,
)
from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.client.test_session import (
    ME,
    PEER,
    FakeGateway,
    connected,
    entry,
    make_client,
    open_session,
)


@pytest.fixture
async def fake_gateway() -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway()
    await gateway.start()
    yield gateway
    await gateway.close()


def change_entry(
    seq: int,
    kind: pb.ChangeKind,
    target: int,
    *,
    sender: int = PEER,
    body: bytes = b"",
) -> pb.Message:
    """Return a change entry of the one-to-one conversation with PEER."""
    return pb.Message(
        seq=seq,
        id=500 + seq,
        sender=sender,
        recipient=ME if sender == PEER else PEER,
        body=body,
        sent_at=2_000 + seq,
        change=kind,
        target=target,
    )


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition``, which the client's background task makes true."""
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.01)


async def test_connect_asks_for_conversation_list(fake_gateway: FakeGateway) -> None:
    client = make_client(fake_gateway)
    connection, connect = await open_session(fake_gateway, client, connected(2))
    assert connect.conversations == 50

    connection.send(
        pb.ConversationList(
            conversations=[
                pb.Conversation(peer=PEER, name="peer", last=entry(2), unread=2)
            ],
            head_seq=2,
            total_unread=2,
        )
    )
    await wait_until(lambda: client.conversation(PEER) is not None)
    listed = client.conversation(PEER)
    newer = entry(3)
    newer.unread = 3
    connection.send(newer)
    await wait_until(lambda: client.total_unread == 3)

    assert listed is not None
    assert (listed.name, listed.unread) == ("peer", 2)
    conversation = client.conversation(PEER)
    assert conversation is not None
    assert conversation.last is not None
    assert conversation.last.seq == 3
    assert [c.key for c in client.cached_conversations()] == [(PEER, 0)]
    await client.close()


async def test_change_is_resent_after_reconnect(fake_gateway: FakeGateway) -> None:
    client = make_client(fake_gateway)
    connection, _ = await open_session(fake_gateway, client, connected(0))
    reading = asyncio.create_task(client.mark_read(PEER))
    first = await connection.expect(FrameType.CHANGE)
    assert isinstance(first, pb.ChangeRequest)
    assert (first.kind, first.peer, first.message_id) == (pb.CHANGE_READ, PEER, 0)

    connection.close()
    again, _ = await fake_gateway.accept()
    again.send(connected(0))
    resent = await again.expect(FrameType.CHANGE)
    assert resent == first
    again.send(
        change_entry(2, pb.CHANGE_READ, 101, sender=ME),
        pb.ChangeAck(request_id=first.request_id, seq=2, id=502, read_id=101),
    )

    changed = await asyncio.wait_for(reading, 5)
    assert changed.changed is True
    assert (changed.seq, changed.id, changed.read_id) == (2, 502, 101)
    await client.close()


async def test_rejected_change_raises(fake_gateway: FakeGateway) -> None:
    client = make_client(fake_gateway)
    connection, _ = await open_session(fake_gateway, client, connected(0))
    recalling = asyncio.create_task(client.recall(101))
    request = await connection.expect(FrameType.CHANGE)
    assert isinstance(request, pb.ChangeRequest)
    assert (request.kind, request.message_id) == (pb.CHANGE_RECALL, 101)

    connection.send(
        pb.Error(
            code=ErrorCode.WINDOW_PASSED,
            reason="message 101 was sent 300 s ago",
            request_id=request.request_id,
        )
    )

    with pytest.raises(ChangeRejected) as info:
        await asyncio.wait_for(recalling, 5)
    assert info.value.code is ErrorCode.WINDOW_PASSED
    assert "300 s" in info.value.reason
    await client.close()


async def test_rate_limited_change_is_retried(fake_gateway: FakeGateway) -> None:
    client = make_client(fake_gateway)
    connection, _ = await open_session(fake_gateway, client, connected(0))
    editing = asyncio.create_task(client.edit(101, "fixed"))
    request = await connection.expect(FrameType.CHANGE)
    assert isinstance(request, pb.ChangeRequest)
    assert request.body == b"fixed"

    connection.send(
        pb.Error(
            code=ErrorCode.RATE_LIMITED,
            reason="slow down",
            request_id=request.request_id,
            retry_after=50,
        )
    )
    retried = await connection.expect(FrameType.CHANGE)
    connection.send(pb.ChangeAck(request_id=request.request_id))

    assert retried == request
    changed = await asyncio.wait_for(editing, 5)
    assert changed.changed is False
    await client.close()


async def test_events_in_inbox_order(fake_gateway: FakeGateway) -> None:
    client = make_client(fake_gateway)
    entries = [
        entry(1, "helo"),
        change_entry(2, pb.CHANGE_EDIT, 101, body=b"hello"),
        change_entry(3, pb.CHANGE_RECALL, 101),
        change_entry(4, pb.CHANGE_DELETE, 101, sender=ME),
        change_entry(5, pb.CHANGE_READ, 101, sender=ME),
        entry(6, "new"),
    ]
    connection, _ = await open_session(fake_gateway, client, connected(6, entries))
    connection.send(pb.ReadReceipt(reader=PEER, message_id=90, read_at=3_000))

    async with asyncio.timeout(5):
        events = [await client.next_event() for _ in range(7)]

    receipt = next(e for e in events if isinstance(e, ReadReceipt))
    assert (receipt.reader_id, receipt.message_id) == (PEER, 90)
    inbox = [e for e in events if not isinstance(e, ReadReceipt)]
    assert [type(e) for e in inbox] == [
        Message,
        MessageEdited,
        MessageRecalled,
        MessageDeleted,
        ConversationRead,
        Message,
    ]
    edited = inbox[1]
    assert isinstance(edited, MessageEdited)
    assert (edited.message_id, edited.text, edited.peer_id) == (101, "hello", PEER)
    deleted = inbox[3]
    assert isinstance(deleted, MessageDeleted)
    assert deleted.peer_id == PEER
    assert client.cursor == 6
    await client.close()


async def test_next_message_passes_over_changes(fake_gateway: FakeGateway) -> None:
    client = make_client(fake_gateway)
    entries = [
        entry(1),
        change_entry(2, pb.CHANGE_RECALL, 101),
        entry(3),
    ]
    connection, _ = await open_session(fake_gateway, client, connected(3, entries))
    connection.send(pb.ReadReceipt(reader=PEER, message_id=90, read_at=3_000))

    async with asyncio.timeout(5):
        first = await client.next_message()
        second = await client.next_message()

    assert (first.seq, second.seq) == (1, 3)
    assert client.cursor == 3
    # The receipt waits for next_event.
    async with asyncio.timeout(5):
        assert isinstance(await client.next_event(), ReadReceipt)
    await client.close()
