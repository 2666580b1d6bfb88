"""Conversation lists and unread counts against a real server, over raw frames."""

from __future__ import annotations

import httpx

from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user, expect_message
from tests.support.server import ServerProcess


def login(server: ServerProcess, name: str, device: str) -> str:
    response = httpx.post(
        server.base_url + "/v1/sessions",
        json={"name": name, "password": "password-" + name, "device": device},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def connect_with_list(
    server: ServerProcess, token: str, device: str, last_seq: int = 0
) -> tuple[RawClient, pb.Connected, pb.ConversationList]:
    client = RawClient(server.tcp_address)
    client.send(
        pb.Connect(
            version=1, token=token, device=device, last_seq=last_seq, conversations=20
        )
    )
    connected = client.expect(FrameType.CONNECTED)
    listing = client.expect(FrameType.CONVERSATION_LIST)
    assert isinstance(connected, pb.Connected)
    assert isinstance(listing, pb.ConversationList)
    return client, connected, listing


def send(client: RawClient, to: int, client_id: int, text: str) -> pb.SendAck:
    client.send(pb.Send(to=to, client_id=client_id, body=text.encode()))
    ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    return ack


def test_unread_is_exact_on_every_device(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob", device="phone")
    laptop_token = login(raw_server, "bob", "laptop")
    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    phone = RawClient(raw_server.tcp_address)
    phone.connect(bob_token, device="phone")
    laptop = RawClient(raw_server.tcp_address)
    laptop.connect(laptop_token, device="laptop")

    for client_id in (1, 2, 3):
        send(alice, bob_id, client_id, f"message {client_id}")

    # Every device of Bob sees the count grow with each entry.
    for device in (phone, laptop):
        assert [expect_message(device).unread for _ in range(3)] == [1, 2, 3]

    # Bob's own reply is no unread message for him, on either device.
    reply = send(phone, alice_id, 1, "hi alice")
    own = expect_message(laptop)
    assert (own.seq, own.unread) == (reply.seq, 3)
    incoming = expect_message(alice)
    assert incoming.unread == 1


def test_reconnect_gets_exact_list(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob", device="phone")
    carol_id, carol_token = create_user(raw_server.base_url, "carol")
    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    carol = RawClient(raw_server.tcp_address)
    carol.connect(carol_token)
    send(alice, bob_id, 1, "one")
    send(alice, bob_id, 2, "two")
    send(carol, bob_id, 1, "from carol")

    # Bob's phone was offline; it catches up and gets the list in one
    # round trip, right after Connected.
    phone, connected, listing = connect_with_list(raw_server, bob_token, "phone")

    assert listing.head_seq == connected.head_seq == 3
    assert listing.total_unread == 3
    assert [(c.peer, c.name, c.unread) for c in listing.conversations] == [
        (carol_id, "carol", 1),
        (alice_id, "alice", 2),
    ]
    assert listing.conversations[0].last.body == b"from carol"
    assert [m.unread for m in connected.sync.messages] == [1, 2, 1]

    # A reconnect from the device's cursor gets the same counts.
    phone.close()
    _, again, relisted = connect_with_list(raw_server, bob_token, "phone", last_seq=3)
    assert list(again.sync.messages) == []
    assert relisted.total_unread == 3
    assert [c.unread for c in relisted.conversations] == [1, 2]


def test_conversations_frame_pipelined_after_connect(
    raw_server: ServerProcess,
) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    send(alice, bob_id, 1, "hello")

    bob = RawClient(raw_server.tcp_address)
    bob.send(pb.Connect(version=1, token=bob_token, device="dev1"))
    bob.send(pb.ConversationsRequest(limit=5))

    assert isinstance(bob.expect(FrameType.CONNECTED), pb.Connected)
    listing = bob.expect(FrameType.CONVERSATION_LIST)
    assert isinstance(listing, pb.ConversationList)
    [conversation] = listing.conversations
    assert (conversation.peer, conversation.unread) == (alice_id, 1)


def test_group_list_entry(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    _, bob_token = create_user(raw_server.base_url, "bob")
    response = httpx.post(
        raw_server.base_url + "/v1/groups",
        json={"name": "trip", "members": ["bob"]},
        headers={"authorization": f"Bearer {alice_token}"},
    )
    assert response.status_code == 201, response.text
    group_id = response.json()["id"]
    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    alice.send(pb.Send(group=group_id, client_id=1, body=b"pack light"))
    alice.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))

    _, _, listing = connect_with_list(raw_server, bob_token, "dev1")

    [conversation] = listing.conversations
    assert conversation.group == group_id
    assert conversation.peer == 0
    assert conversation.name == "trip"
    assert conversation.unread == 1
    assert conversation.last.sender == alice_id
    assert conversation.last.body == b"pack light"
