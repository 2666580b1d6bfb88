"""Read positions and read receipts against a real server, over raw frames."""

from __future__ import annotations

from typing import Any

import httpx

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import (
    RawClient,
    assert_nothing_pending,
    create_user,
    expect_change_ack,
    expect_error,
    expect_message,
)
from tests.support.server import ServerProcess


def login(server: ServerProcess, name: str, device: str) -> str:
    response = httpx.post(
        server.base_url + "/v1/sessions",
        json={"name": name, "password": "password-" + name, "device": device},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def call(
    server: ServerProcess, token: str, method: str, path: str, body: Any = None
) -> httpx.Response:
    return httpx.request(
        method,
        server.base_url + path,
        json=body,
        headers={"authorization": f"Bearer {token}"},
    )


def online(server: ServerProcess, token: str, device: str = "dev1") -> RawClient:
    client = RawClient(server.tcp_address)
    client.connect(token, device=device)
    return client


def send(client: RawClient, to: int, client_id: int) -> pb.SendAck:
    client.send(pb.Send(to=to, client_id=client_id, body=b"hi"))
    ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    return ack


def post(client: RawClient, group: int, client_id: int) -> pb.SendAck:
    client.send(pb.Send(group=group, client_id=client_id, body=b"hi all"))
    ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    return ack


def make_group(server: ServerProcess, token: str, members: list[str]) -> int:
    response = call(
        server, token, "POST", "/v1/groups", {"name": "team", "members": members}
    )
    assert response.status_code == 201, response.text
    group_id: int = response.json()["id"]
    return group_id


def test_read_reaches_every_device_and_the_peer(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, phone_token = create_user(raw_server.base_url, "bob", device="phone")
    laptop_token = login(raw_server, "bob", "laptop")
    alice = online(raw_server, alice_token)
    phone = online(raw_server, phone_token, "phone")
    laptop = online(raw_server, laptop_token, "laptop")
    send(alice, bob_id, 1)
    last = send(alice, bob_id, 2)
    for device in (phone, laptop):
        assert [expect_message(device).unread for _ in range(2)] == [1, 2]

    phone.send(pb.ChangeRequest(request_id=7, kind=pb.CHANGE_READ, peer=alice_id))

    # The read entry reaches both of Bob's devices, the acting one first.
    entry = expect_message(phone)
    ack = expect_change_ack(phone)
    assert (entry.change, entry.target) == (pb.CHANGE_READ, last.id)
    assert (entry.sender, entry.recipient, entry.unread) == (bob_id, alice_id, 0)
    assert entry.seq == 3
    assert ack.request_id == 7
    assert (ack.seq, ack.id, ack.changed_at) == (3, entry.id, entry.sent_at)
    assert (ack.unread, ack.read_id) == (0, last.id)
    assert expect_message(laptop) == entry
    receipt = alice.expect(FrameType.READ_RECEIPT)
    assert isinstance(receipt, pb.ReadReceipt)
    assert (receipt.reader, receipt.group) == (bob_id, 0)
    assert (receipt.message_id, receipt.read_at) == (last.id, entry.sent_at)
    for client in (alice, phone, laptop):
        assert_nothing_pending(client)


def test_offline_devices_learn_reads_on_connect(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, phone_token = create_user(raw_server.base_url, "bob", device="phone")
    tablet_token = login(raw_server, "bob", "tablet")
    alice_laptop_token = login(raw_server, "alice", "laptop")
    alice = online(raw_server, alice_token)
    tablet = online(raw_server, tablet_token, "tablet")
    send(alice, bob_id, 1)
    send(alice, bob_id, 2)
    assert [expect_message(tablet).unread for _ in range(2)] == [1, 2]
    tablet.close()

    phone = online(raw_server, phone_token, "phone")
    phone.send(pb.ChangeRequest(request_id=1, kind=pb.CHANGE_READ, peer=alice_id))
    assert expect_message(phone).change == pb.CHANGE_READ
    expect_change_ack(phone)

    # The tablet catches up from its cursor: the read entry says 0 unread.
    tablet = RawClient(raw_server.tcp_address)
    tablet.send(
        pb.Connect(
            version=1, token=tablet_token, device="tablet", last_seq=2, conversations=5
        )
    )
    connected = tablet.expect(FrameType.CONNECTED)
    listing = tablet.expect(FrameType.CONVERSATION_LIST)
    assert isinstance(connected, pb.Connected)
    assert isinstance(listing, pb.ConversationList)
    [entry] = connected.sync.messages
    assert (entry.change, entry.unread) == (pb.CHANGE_READ, 0)
    assert listing.total_unread == 0
    # Alice's laptop was offline: the list has Bob's read position.
    laptop = RawClient(raw_server.tcp_address)
    laptop.send(
        pb.Connect(
            version=1, token=alice_laptop_token, device="laptop", conversations=5
        )
    )
    laptop.expect(FrameType.CONNECTED)
    alice_list = laptop.expect(FrameType.CONVERSATION_LIST)
    assert isinstance(alice_list, pb.ConversationList)
    [conversation] = alice_list.conversations
    assert conversation.peer_read_id == entry.target


def test_read_without_news_changes_nothing(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    alice = online(raw_server, alice_token)
    bob = online(raw_server, bob_token)
    first = send(alice, bob_id, 1)
    send(alice, bob_id, 2)
    expect_message(bob)
    expect_message(bob)

    bob.send(
        pb.ChangeRequest(
            request_id=1, kind=pb.CHANGE_READ, peer=alice_id, message_id=first.id
        )
    )
    assert expect_message(bob).unread == 1
    assert expect_change_ack(bob).unread == 1
    bob.send(
        pb.ChangeRequest(
            request_id=2, kind=pb.CHANGE_READ, peer=alice_id, message_id=first.id
        )
    )

    again = expect_change_ack(bob)
    assert (again.request_id, again.seq, again.id) == (2, 0, 0)
    assert (again.unread, again.read_id) == (1, first.id)
    assert_nothing_pending(bob)


def test_group_read_tells_the_senders(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    _, bob_token = create_user(raw_server.base_url, "bob")
    _, carol_token = create_user(raw_server.base_url, "carol")
    _, dave_token = create_user(raw_server.base_url, "dave")
    group_id = make_group(raw_server, alice_token, ["bob", "carol", "dave"])
    alice, bob = online(raw_server, alice_token), online(raw_server, bob_token)
    carol, dave = online(raw_server, carol_token), online(raw_server, dave_token)
    first = post(alice, group_id, 1)
    post(bob, group_id, 1)
    for client in (alice, bob, carol, dave):
        client.drain()

    carol.send(pb.ChangeRequest(request_id=3, kind=pb.CHANGE_READ, group=group_id))
    entry = expect_message(carol)
    ack = expect_change_ack(carol)

    assert (entry.group, entry.change, entry.unread) == (group_id, pb.CHANGE_READ, 0)
    assert ack.read_id == entry.target
    for sender in (alice, bob):
        receipt = sender.expect(FrameType.READ_RECEIPT)
        assert isinstance(receipt, pb.ReadReceipt)
        assert (receipt.group, receipt.message_id) == (group_id, entry.target)
    assert_nothing_pending(dave)

    counts = call(
        raw_server,
        dave_token,
        "GET",
        f"/v1/groups/{group_id}/reads?id={first.id}&id={entry.target}",
    )
    assert counts.status_code == 200, counts.text
    assert counts.json() == {
        "reads": [
            {"id": first.id, "read": 1, "members": 3},
            {"id": entry.target, "read": 1, "members": 3},
        ]
    }


def test_bad_reads_get_errors(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    _, bob_token = create_user(raw_server.base_url, "bob")
    group_id = make_group(raw_server, alice_token, [])
    bob = online(raw_server, bob_token)
    cases = [
        (
            pb.ChangeRequest(request_id=1, kind=pb.CHANGE_NONE),
            ErrorCode.INVALID_ARGUMENT,
        ),
        (
            pb.ChangeRequest(request_id=2, kind=pb.CHANGE_READ),
            ErrorCode.INVALID_ARGUMENT,
        ),
        (
            pb.ChangeRequest(
                request_id=3, kind=pb.CHANGE_READ, peer=alice_id, group=group_id
            ),
            ErrorCode.INVALID_ARGUMENT,
        ),
        (
            pb.ChangeRequest(request_id=4, kind=pb.CHANGE_READ, peer=999),
            ErrorCode.UNKNOWN_RECIPIENT,
        ),
        (
            pb.ChangeRequest(request_id=5, kind=pb.CHANGE_READ, group=999),
            ErrorCode.GROUP_NOT_FOUND,
        ),
        (
            pb.ChangeRequest(request_id=6, kind=pb.CHANGE_READ, group=group_id),
            ErrorCode.NOT_A_MEMBER,
        ),
        (
            pb.ChangeRequest(request_id=7, kind=99, peer=alice_id),  # type: ignore[arg-type]
            ErrorCode.INVALID_ARGUMENT,
        ),
    ]

    for request, code in cases:
        bob.send(request)
        error = expect_error(bob)
        assert (error.request_id, error.code) == (request.request_id, code)
        assert error.fatal is False
        assert error.client_id == 0

    assert_nothing_pending(bob)


def test_change_pipelined_after_connect(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    alice = online(raw_server, alice_token)
    send(alice, bob_id, 1)

    bob = RawClient(raw_server.tcp_address)
    bob.send(pb.Connect(version=1, token=bob_token, device="dev1"))
    bob.send(pb.ChangeRequest(request_id=9, kind=pb.CHANGE_READ, peer=alice_id))

    assert isinstance(bob.expect(FrameType.CONNECTED), pb.Connected)
    assert expect_message(bob).change == pb.CHANGE_READ
    assert expect_change_ack(bob).request_id == 9


def test_http_read(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    alice = online(raw_server, alice_token)
    bob = online(raw_server, bob_token)
    first = send(alice, bob_id, 1)
    send(alice, bob_id, 2)
    bob.drain()

    partial = call(
        raw_server,
        bob_token,
        "POST",
        "/v1/conversations/alice/read",
        {"message_id": first.id},
    )
    full = call(raw_server, bob_token, "POST", "/v1/conversations/alice/read", {})

    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert (body["read_id"], body["unread"], body["seq"]) == (first.id, 1, 3)
    assert body["id"] > first.id
    assert body["changed_at"] > 0
    assert full.json()["unread"] == 0
    assert full.json()["seq"] == 4
    # The HTTP reads reach the socket device too, and Alice gets receipts.
    assert [expect_message(bob).unread for _ in range(2)] == [1, 0]
    receipts = [alice.expect(FrameType.READ_RECEIPT) for _ in range(2)]
    assert all(isinstance(r, pb.ReadReceipt) for r in receipts)


def test_http_read_errors(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    _, bob_token = create_user(raw_server.base_url, "bob")
    group_id = make_group(raw_server, alice_token, [])

    unknown_peer = call(raw_server, bob_token, "POST", "/v1/conversations/zed/read", {})
    unknown_group = call(raw_server, bob_token, "POST", "/v1/groups/999/read", {})
    stranger = call(raw_server, bob_token, "POST", f"/v1/groups/{group_id}/read", {})
    bad_id = call(
        raw_server, bob_token, "POST", "/v1/conversations/alice/read", {"message_id": 0}
    )
    counts_stranger = call(
        raw_server, bob_token, "GET", f"/v1/groups/{group_id}/reads?id=1"
    )
    too_many = "&".join(f"id={i}" for i in range(1, 102))
    counts_many = call(
        raw_server, alice_token, "GET", f"/v1/groups/{group_id}/reads?{too_many}"
    )

    assert unknown_peer.status_code == 404
    assert unknown_peer.json()["error"]["code"] == "user_not_found"
    assert unknown_group.status_code == 404
    assert unknown_group.json()["error"]["code"] == "group_not_found"
    assert stranger.status_code == 403
    assert stranger.json()["error"]["code"] == "not_a_member"
    assert bad_id.status_code == 422
    assert counts_stranger.status_code == 403
    assert counts_many.status_code == 422
