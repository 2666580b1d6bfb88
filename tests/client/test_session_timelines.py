"""Large-group timelines in the client session, against a scripted gateway."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.client import Client
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.client.test_session import (
    PEER,
    FakeConnection,
    FakeGateway,
    connected,
    gateway,
    make_client,
    open_session,
)

__all__ = ["gateway"]

GROUP = 9


def entry(seq: int) -> pb.Message:
    """Timeline entry ``seq`` of GROUP, as every member receives it."""
    return pb.Message(
        id=100 + seq, sender=PEER, group=GROUP, body=f"m{seq}".encode(), group_seq=seq
    )


def connected_with(head_seq: int, start_seq: int = 1) -> pb.Connected:
    reply = connected(0)
    reply.timelines.append(
        pb.TimelineHead(group=GROUP, head_seq=head_seq, start_seq=start_seq)
    )
    return reply


async def expect_sync(connection: FakeConnection) -> pb.TimelineSync:
    """Return the next TimelineSync, skipping Cursor frames."""
    while True:
        async with asyncio.timeout(5):
            event = await connection.frames.get()
        assert event is not None, "connection closed while expecting TimelineSync"
        if event.type is FrameType.CURSOR:
            continue
        assert event.type is FrameType.TIMELINE_SYNC, event.type.name
        assert isinstance(event.message, pb.TimelineSync)
        return event.message


async def bodies(client: Client, count: int) -> list[str]:
    received = []
    async with asyncio.timeout(5):
        for _ in range(count):
            message = await client.next_message()
            received.append(message.text or "")
    return received


async def assert_no_message(client: Client) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await client.next_message()


async def test_overlapping_pushes_and_page(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected_with(2))
    request = await expect_sync(connection)
    assert (request.group, request.after_seq) == (GROUP, 0)

    # Pushes stored while the page was read arrive before and after it.
    connection.send(entry(3), entry(2))
    page = pb.TimelinePage(group=GROUP, after_seq=0, head_seq=3, start_seq=1)
    page.messages.extend([entry(1), entry(2), entry(3)])
    connection.send(page, entry(3))

    assert await bodies(client, 3) == ["m1", "m2", "m3"]
    # Repeats of entries already handed out, as after a resent page.
    connection.send(entry(2), entry(3))
    await assert_no_message(client)
    await client.close()


async def test_reconnect_continues_from_cursor(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    first, _ = await open_session(gateway, client, connected_with(1))
    await expect_sync(first)
    page = pb.TimelinePage(group=GROUP, head_seq=1, start_seq=1)
    page.messages.append(entry(1))
    first.send(page)
    assert await bodies(client, 1) == ["m1"]
    await client.flush()
    first.close()

    second, _ = await gateway.accept()
    second.send(connected_with(3), entry(3))
    request = await expect_sync(second)
    assert request.after_seq == 1
    page = pb.TimelinePage(group=GROUP, after_seq=1, head_seq=3, start_seq=1)
    page.messages.extend([entry(2), entry(3)])
    second.send(page)

    assert await bodies(client, 2) == ["m2", "m3"]
    await assert_no_message(client)
    await client.flush()
    assert client.caught_up
    await client.close()


async def test_new_member_starts_at_join(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected_with(6, 5))
    request = await expect_sync(connection)
    assert request.after_seq == 4

    page = pb.TimelinePage(group=GROUP, after_seq=4, head_seq=6, start_seq=5)
    page.messages.extend([entry(5), entry(6)])
    connection.send(page)

    assert await bodies(client, 2) == ["m5", "m6"]
    await client.close()


async def test_own_send_ack_fills_timeline(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected_with(1))
    await expect_sync(connection)
    page = pb.TimelinePage(group=GROUP, head_seq=1, start_seq=1)
    page.messages.append(entry(1))
    connection.send(page)
    assert await bodies(client, 1) == ["m1"]

    sending = asyncio.create_task(client.send_group(GROUP, "mine"))
    send = await connection.expect(FrameType.SEND)
    assert isinstance(send, pb.Send)
    connection.send(
        pb.SendAck(client_id=send.client_id, id=500, sent_at=1, group_seq=2)
    )
    sent = await sending

    assert sent.id == 500
    message = await client.next_message()
    assert (message.text, message.group_seq, message.outgoing) == ("mine", 2, True)
    await assert_no_message(client)
    await client.close()
