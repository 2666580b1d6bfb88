"""Encode-once delivery of group messages, through the in-process bus."""

from __future__ import annotations

from pathlib import Path

from switchboard.bus.base import Endpoint, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.ids import ConnectionId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.logic.routing import MemoryRoutingTable
from switchboard.logic.timeline import TimelineService
from switchboard.logic.wire import SharedMessage, to_wire_message
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType, encode
from switchboard.store.base import GroupAppendResult, InboxEntry, StoredMessage
from switchboard.store.sqlite import SqliteStore

GATEWAY = "gw"
MEMBERS = 300
DEVICES = 2


def stored_message() -> StoredMessage:
    return StoredMessage(
        id=MessageId(901),
        sender=UserId(1),
        recipient=UserId(0),
        content_type=0,
        body=b"to everyone",
        sent_at=1_796_385_780_000,
        group_id=GroupId(7),
        mentions=(UserId(2), UserId(3)),
    )


async def routed_members(routing: MemoryRoutingTable) -> list[Endpoint]:
    endpoints = []
    number = 0
    for user in range(1, MEMBERS + 1):
        for device in range(DEVICES):
            number += 1
            endpoint = Endpoint(GATEWAY, ConnectionId(number))
            await routing.add(UserId(user), DeviceId(f"d{device}"), endpoint)
            endpoints.append(endpoint)
    return endpoints


async def test_timeline_frame_encoded_once(tmp_path: Path) -> None:
    bus = InProcessBus()
    written: list[Outbound] = []
    bus.subscribe_outbound(GATEWAY, written.append)
    routing = MemoryRoutingTable()
    endpoints = await routed_members(routing)
    # deliver() reads no storage; the store is never opened.
    service = TimelineService(Settings(), SqliteStore(tmp_path / "x.db"), bus, routing)
    members = tuple(UserId(user) for user in range(1, MEMBERS + 1))
    result = GroupAppendResult(
        message=stored_message(),
        seqs={},
        duplicate=False,
        timeline_seq=Seq(42),
        members=members,
    )

    count = await service.deliver(result, origin=endpoints[0])

    assert count == MEMBERS * DEVICES - 1
    assert service.encoded == 1
    assert len(written) == count
    assert {item.endpoint for item in written} == set(endpoints[1:])
    first = written[0].data
    assert all(item.data is first for item in written)
    message = pb.Message.FromString(first[2:])
    assert message.group_seq == 42
    assert message.seq == 0
    assert message.body == b"to everyone"


async def test_timeline_skips_non_members(tmp_path: Path) -> None:
    bus = InProcessBus()
    written: list[Outbound] = []
    bus.subscribe_outbound(GATEWAY, written.append)
    routing = MemoryRoutingTable()
    await routed_members(routing)
    service = TimelineService(Settings(), SqliteStore(tmp_path / "x.db"), bus, routing)
    result = GroupAppendResult(
        message=stored_message(),
        seqs={},
        duplicate=False,
        timeline_seq=Seq(5),
        members=(UserId(1), UserId(2)),
    )

    count = await service.deliver(result, origin=None)

    assert count == 2 * DEVICES
    assert len(written) == 2 * DEVICES


def test_shared_message_frame_decodes_as_whole() -> None:
    message = stored_message()
    shared = SharedMessage(message)

    for seq, unread in [(1, 0), (17, 3), (2**40, 70_000)]:
        frame = shared.frame(seq, unread)
        whole = encode(to_wire_message(InboxEntry(Seq(seq), message, unread)))
        assert len(frame) == len(whole)
        decoded = pb.Message.FromString(frame[2:])
        assert decoded == pb.Message.FromString(whole[2:])
        assert frame[2:].startswith(shared.shared)


def test_shared_message_serialized_once() -> None:
    shared = SharedMessage(stored_message())
    prefix = shared.shared

    frames = [shared.frame(seq, 1) for seq in range(1, 50)]

    assert shared.shared is prefix
    for seq, frame in enumerate(frames, start=1):
        assert frame[1] == FrameType.MESSAGE
        tail = pb.Message(seq=seq, unread=1).SerializeToString()
        assert frame[2:] == prefix + tail
