"""Delivery guarantees of the sequence sync protocol, against a real server.

Each test drives raw frames, so it checks what the server sends, not what an
SDK hides.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from switchboard.errors import ErrorCode
from switchboard.ids import DeviceId, UserId
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from switchboard.store.sqlite import SqliteStore
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


def login(server: ServerProcess, name: str, device: str) -> str:
    response = httpx.post(
        server.base_url + "/v1/sessions",
        json={"name": name, "password": "password-" + name, "device": device},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def send_many(
    client: RawClient, to: int, count: int, first_id: int = 1
) -> list[pb.SendAck]:
    """Pipeline ``count`` sends and return their acks in client id order."""
    for client_id in range(first_id, first_id + count):
        client.send(pb.Send(to=to, client_id=client_id, body=f"m{client_id}".encode()))
    acks: dict[int, pb.SendAck] = {}
    while len(acks) < count:
        ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
        assert isinstance(ack, pb.SendAck)
        acks[ack.client_id] = ack
    return [acks[i] for i in sorted(acks)]


def sync_all(client: RawClient, after: int, limit: int = 0) -> list[pb.Message]:
    """Page through Sync until has_more is false; return every message."""
    messages: list[pb.Message] = []
    while True:
        client.send(pb.SyncRequest(after_seq=after, limit=limit))
        page = client.expect(FrameType.SYNC_RESPONSE, skip=(FrameType.MESSAGE,))
        assert isinstance(page, pb.SyncResponse)
        assert page.after_seq == after
        messages.extend(page.messages)
        if not page.has_more:
            return messages
        after = page.messages[-1].seq


def connect_and_catch_up(
    server: ServerProcess, token: str, device: str, cursor: int, limit: int = 0
) -> tuple[pb.Connected, list[pb.Message]]:
    client = RawClient(server.tcp_address)
    client.send(
        pb.Connect(
            version=1, token=token, device=device, last_seq=cursor, sync_limit=limit
        )
    )
    connected = client.expect(FrameType.CONNECTED)
    assert isinstance(connected, pb.Connected)
    messages = list(connected.sync.messages)
    if connected.sync.has_more:
        messages += sync_all(client, messages[-1].seq, limit)
    client.close()
    return connected, messages


def test_messages_to_half_open_device_arrive_after_reconnect(
    raw_server: ServerProcess,
) -> None:
    ann_id, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    # Bob's device goes silent without closing its socket: the server keeps
    # writing into it until the heartbeat timeout (3 s) evicts it.
    silent = RawClient(raw_server.tcp_address, rcvbuf=4096)
    silent.connect(bob)
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)
    acks = send_many(sender, bob_id, 50)
    deadline = time.monotonic() + 10
    while "reason=heartbeat_timeout" not in raw_server.log():
        assert time.monotonic() < deadline, "silent device was not evicted"
        sender.send_bytes(b"\x00")
        time.sleep(0.5)
    _, messages = connect_and_catch_up(raw_server, bob, "dev1", cursor=0)
    assert [m.seq for m in messages] == list(range(1, 51))
    assert [m.id for m in messages] == [ack.id for ack in acks]
    assert [m.body for m in messages] == [f"m{i}".encode() for i in range(1, 51)]
    assert all(m.sender == ann_id for m in messages)


def test_stale_zero_and_repeated_cursors_return_only_later_messages(
    raw_server: ServerProcess,
) -> None:
    _ann_id, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)
    send_many(sender, bob_id, 20)
    for cursor in (20, 5, 0, 5, 5):
        connected, messages = connect_and_catch_up(raw_server, bob, "dev1", cursor)
        assert connected.head_seq == 20
        assert [m.seq for m in messages] == list(range(cursor + 1, 21))


def test_cursor_above_head_gets_error_and_real_head(raw_server: ServerProcess) -> None:
    _ann_id, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)
    send_many(sender, bob_id, 20)
    client = RawClient(raw_server.tcp_address)
    client.send(pb.Connect(version=1, token=bob, device="dev1", last_seq=25))
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.CURSOR_AHEAD
    assert not error.fatal
    assert "25" in error.reason
    assert "20" in error.reason
    connected = client.expect(FrameType.CONNECTED)
    assert isinstance(connected, pb.Connected)
    assert connected.head_seq == 20
    assert list(connected.sync.messages) == []
    # A message sent afterwards is still delivered with the next sequence.
    sender.send(pb.Send(to=bob_id, client_id=21, body=b"after"))
    pushed = client.expect(FrameType.MESSAGE)
    assert isinstance(pushed, pb.Message)
    assert pushed.seq == 21


def test_paging_messages_with_equal_timestamps(raw_server: ServerProcess) -> None:
    _ann_id, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)
    acks = send_many(sender, bob_id, 300)
    runs = [
        connect_and_catch_up(raw_server, bob, "dev1", 0, limit=7)[1] for _ in range(2)
    ]
    sent_at = [m.sent_at for m in runs[0]]
    assert min(sent_at) > 0
    assert len(set(sent_at)) < len(sent_at), "expected messages sharing a millisecond"
    for messages in runs:
        assert [m.seq for m in messages] == list(range(1, 301))
        assert len({m.id for m in messages}) == 300
    assert runs[0] == runs[1]
    # History pages backwards through the same messages, each once.
    headers = {"Authorization": f"Bearer {bob}"}
    seen: list[int] = []
    before = None
    for _ in range(100):
        params: dict[str, int] = {"limit": 7}
        if before is not None:
            params["before"] = before
        page = httpx.get(
            raw_server.base_url + "/v1/conversations/ann/messages",
            params=params,
            headers=headers,
        ).json()
        seen += [m["id"] for m in page["messages"]]
        if not page["has_more"]:
            break
        before = page["messages"][-1]["id"]
    assert seen == sorted((ack.id for ack in acks), reverse=True)


def test_offline_gap_larger_than_page(raw_server: ServerProcess) -> None:
    _ann_id, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)
    send_many(sender, bob_id, 500)
    client = RawClient(raw_server.tcp_address)
    connected = client.connect(bob, last_seq=10)
    assert connected.head_seq == 500
    assert connected.sync.has_more
    first = list(connected.sync.messages)
    assert first[0].seq == 11
    rest = sync_all(client, first[-1].seq)
    assert [m.seq for m in first + rest] == list(range(11, 501))


def test_message_reaches_every_device_once(raw_server: ServerProcess) -> None:
    ann_id, ann_phone = create_user(raw_server.base_url, "ann", device="phone")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    ann_tablet = login(raw_server, "ann", "tablet")
    ann_desktop = login(raw_server, "ann", "desktop")
    phone = RawClient(raw_server.tcp_address)
    phone.connect(ann_phone, device="phone")
    tablet = RawClient(raw_server.tcp_address)
    tablet.connect(ann_tablet, device="tablet")  # connected but idle
    sender = RawClient(raw_server.tcp_address)
    sender.connect(bob)

    # Bob to Ann: each online device gets it once; the offline desktop syncs it.
    send_many(sender, ann_id, 1)
    for device in (phone, tablet):
        message = device.expect(FrameType.MESSAGE)
        assert isinstance(message, pb.Message)
        assert (message.seq, message.body) == (1, b"m1")
    # Ann's own message from the phone appears on the tablet and the desktop.
    phone.send(pb.Send(to=bob_id, client_id=1, body=b"from phone"))
    ack = phone.expect(FrameType.SEND_ACK)
    assert isinstance(ack, pb.SendAck)
    assert ack.seq == 2
    echoed = tablet.expect(FrameType.MESSAGE)
    assert isinstance(echoed, pb.Message)
    assert (echoed.seq, echoed.body, echoed.sender) == (2, b"from phone", ann_id)
    incoming = sender.expect(FrameType.MESSAGE)
    assert isinstance(incoming, pb.Message)
    assert incoming.body == b"from phone"
    # Nothing more arrives on the phone or the tablet: no duplicate pushes.
    for device in (phone, tablet):
        device.send_bytes(b"\x00")
        assert device.receive() is None
        assert device.pending == []
    _, desktop_messages = connect_and_catch_up(raw_server, ann_desktop, "desktop", 0)
    assert [(m.seq, m.body) for m in desktop_messages] == [
        (1, b"m1"),
        (2, b"from phone"),
    ]


def test_resend_after_lost_ack_is_deduplicated(raw_server: ServerProcess) -> None:
    _ann_id, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    receiver = RawClient(raw_server.tcp_address)
    receiver.connect(bob)
    first = RawClient(raw_server.tcp_address)
    first.connect(ann)
    first.send(pb.Send(to=bob_id, client_id=42, body=b"once"))
    first.close()  # the connection drops before the ack is read
    again = RawClient(raw_server.tcp_address)
    connected = again.connect(ann)
    assert connected.last_client_id == 42
    acks = []
    for _ in range(2):  # the SDK's retry and the application's own retry
        again.send(pb.Send(to=bob_id, client_id=42, body=b"once"))
        # The device may also get its own message pushed as an inbox entry.
        ack = again.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
        assert isinstance(ack, pb.SendAck)
        acks.append((ack.id, ack.seq, ack.sent_at))
    assert acks[0] == acks[1]
    delivered = receiver.expect(FrameType.MESSAGE)
    assert isinstance(delivered, pb.Message)
    assert delivered.body == b"once"
    receiver.send_bytes(b"\x00")
    assert receiver.receive() is None
    assert receiver.pending == []
    history = httpx.get(
        raw_server.base_url + "/v1/conversations/ann/messages",
        headers={"Authorization": f"Bearer {bob}"},
    ).json()
    assert [m["text"] for m in history["messages"]] == ["once"]


def test_connect_cursor_updates_stored_cursor(raw_server: ServerProcess) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)
    send_many(sender, bob_id, 5)
    # Bob reports holding 3 in Connect alone, with no Cursor frame.
    connect_and_catch_up(raw_server, bob, "dev1", cursor=3)
    raw_server.terminate()  # the drain finishes pending writes

    async def read_cursor() -> int:
        store = SqliteStore(raw_server.data_dir / "switchboard.db")
        await store.open()
        try:
            state = await store.get_device(UserId(bob_id), DeviceId("dev1"))
        finally:
            await store.close()
        return state.cursor

    assert asyncio.run(read_cursor()) == 3


def test_reconnect_reports_last_client_id_of_unread_ack(
    raw_server: ServerProcess,
) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    bob_id, _ = create_user(raw_server.base_url, "bob")
    client = RawClient(raw_server.tcp_address)
    client.connect(ann)
    for client_id in range(1, 31):
        client.send(pb.Send(to=bob_id, client_id=client_id, body=b"x"))
        client.close()  # before the ack arrives
        client = RawClient(raw_server.tcp_address)
        connected = client.connect(ann, last_seq=client_id - 1)
        # A device that lost its state numbers new messages above this, so
        # it must cover the Send still being stored when Connect arrived.
        assert connected.last_client_id == client_id
        assert [m.seq for m in connected.sync.messages] == [client_id]


def test_pipelined_sync_sees_earlier_send(raw_server: ServerProcess) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    bob_id, _ = create_user(raw_server.base_url, "bob")
    client = RawClient(raw_server.tcp_address)
    client.send_bytes(
        client.protocol.send(pb.Connect(version=1, token=ann, device="dev1"))
        + client.protocol.send(pb.Send(to=bob_id, client_id=1, body=b"first"))
        + client.protocol.send(pb.SyncRequest(after_seq=0))
    )
    connected = client.expect(FrameType.CONNECTED)
    assert isinstance(connected, pb.Connected)
    replies = [client.receive(), client.receive()]
    by_type = {event.type: event.message for event in replies if event is not None}
    page = by_type[FrameType.SYNC_RESPONSE]
    assert isinstance(page, pb.SyncResponse)
    assert [m.body for m in page.messages] == [b"first"]
    assert FrameType.SEND_ACK in by_type


def test_cursor_out_of_range_is_rejected_not_fatal(raw_server: ServerProcess) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    client = RawClient(raw_server.tcp_address)
    client.connect(ann)

    client.send(pb.Cursor(seq=2**64 - 1))

    error = client.expect(FrameType.ERROR)
    assert error.code == ErrorCode.INVALID_ARGUMENT
    assert not error.fatal
    client.send(pb.SyncRequest(after_seq=0))
    assert client.expect(FrameType.SYNC_RESPONSE).head_seq == 0


def test_live_push_leaves_out_what_the_receiver_knows(
    raw_server: ServerProcess,
) -> None:
    ann_id, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    ann_other = login(raw_server, "ann", "laptop")
    sender, sender_laptop, receiver = (RawClient(raw_server.tcp_address) for _ in "abc")
    sender.connect(ann)
    sender_laptop.connect(ann_other, device="laptop")
    receiver.connect(bob)

    sender.send(pb.Send(to=bob_id, client_id=1, body=b"hi"))
    ack = sender.expect(FrameType.SEND_ACK)
    pushed = receiver.expect(FrameType.MESSAGE)
    own_copy = sender_laptop.expect(FrameType.MESSAGE)

    # The SendAck and the pushes carry no time; the recipient's push names
    # no recipient, the sender's other device's names the peer.
    assert isinstance(ack, pb.SendAck)
    assert ack.sent_at == 0
    assert isinstance(pushed, pb.Message) and isinstance(own_copy, pb.Message)
    assert (pushed.sender, pushed.recipient, pushed.sent_at) == (ann_id, 0, 0)
    assert (own_copy.sender, own_copy.recipient, own_copy.sent_at) == (
        ann_id,
        bob_id,
        0,
    )
    # Sync pages carry both.
    (synced,) = sync_all(receiver, 0)
    assert (synced.id, synced.recipient) == (pushed.id, bob_id)
    assert synced.sent_at > 1_700_000_000_000
