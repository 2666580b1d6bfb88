"""Typing and presence in the client session, against a scripted gateway."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.client import PresenceChanged, TypingChanged
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.client.test_session import (
    PEER,
    FakeGateway,
    connected,
    gateway,
    make_client,
    open_session,
)

__all__ = ["gateway"]


async def test_frames_become_signals(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    connection.send(
        pb.Typing(sender=PEER, active=True, ttl=6),
        pb.PresenceUpdate(users=[pb.UserPresence(user=PEER, last_seen=1234)]),
    )
    async with asyncio.timeout(5):
        typing = await client.next_signal()
        presence = await client.next_signal()
    assert typing == TypingChanged(PEER, "peer", 0, True, 6)
    assert presence == PresenceChanged(PEER, "peer", False, 1234)
    assert client.presence(PEER) == PresenceChanged(PEER, None, False, 1234)
    await client.close()


async def test_watch_list_is_sent_on_every_connection(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    first, _ = await open_session(gateway, client, connected(0))
    await client.watch_presence([PEER, 7])
    request = await first.expect(FrameType.PRESENCE_SUBSCRIBE)
    assert isinstance(request, pb.PresenceSubscribe)
    assert list(request.users) == [PEER, 7]
    first.close()

    second, _ = await gateway.accept()
    second.send(connected(0))
    again = await second.expect(FrameType.PRESENCE_SUBSCRIBE)
    assert isinstance(again, pb.PresenceSubscribe)
    assert list(again.users) == [PEER, 7]
    await client.close()


async def test_typing_frames_are_refreshed_not_repeated(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    for _ in range(3):
        await client.set_typing(PEER)
    await client.set_typing(group=9)
    first = await connection.expect(FrameType.TYPING)
    group = await connection.expect(FrameType.TYPING)
    assert isinstance(first, pb.Typing)
    assert isinstance(group, pb.Typing)
    assert (first.to, first.group, first.active) == (PEER, 0, True)
    assert (group.to, group.group, group.active) == (0, 9, True)
    await connection.expect_none(FrameType.TYPING, within=0.2)

    await client.set_typing(PEER, active=False)
    await client.set_typing(PEER, active=False)
    stop = await connection.expect(FrameType.TYPING)
    assert isinstance(stop, pb.Typing)
    assert not stop.active
    await connection.expect_none(FrameType.TYPING, within=0.2)
    with pytest.raises(ValueError, match="either to"):
        await client.set_typing()
    await client.close()


async def test_typing_while_offline_sends_nothing(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    connection.close()
    second, _ = await gateway.accept()
    # Connected has not arrived: the typing is dropped, not queued.
    await client.set_typing(PEER)
    second.send(connected(0))
    await second.expect_none(FrameType.TYPING, within=0.3)
    await client.close()
