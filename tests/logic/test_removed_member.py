"""A member removed from a group hears nothing more about it, on any device."""

from __future__ import annotations

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.logic.test_groups import Api, create_group, login, notice_of
from tests.support.rawclient import (
    RawClient,
    assert_nothing_pending,
    create_user,
    expect_error,
    expect_message,
)
from tests.support.server import ServerProcess

CHATTER = (FrameType.MESSAGE, FrameType.READ_RECEIPT, FrameType.TYPING)
"""Frames other members get meanwhile, which a test of theirs skips."""


def post(client: RawClient, group: int, client_id: int, body: bytes) -> pb.SendAck:
    client.send(pb.Send(group=group, client_id=client_id, body=body))
    ack = client.expect(FrameType.SEND_ACK, skip=CHATTER)
    assert isinstance(ack, pb.SendAck)
    return ack


def wait_for_removal(device: RawClient) -> None:
    """Read pushed messages up to and including the removal notice."""
    while True:
        message = expect_message(device)
        if message.content_type == 2 and notice_of(message)["event"] == (
            "member_removed"
        ):
            return


def test_removed_member_hears_nothing_about_the_group(
    raw_server: ServerProcess,
) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    _, carol_token = create_user(raw_server.base_url, "carol")
    alice_api = Api(raw_server, alice_token)
    group = create_group(alice_api, "trip", ["bob", "carol"])
    alice, carol = RawClient(raw_server.tcp_address), RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    carol.connect(carol_token)
    bob_phone, bob_laptop = (RawClient(raw_server.tcp_address) for _ in "pl")
    bob_phone.connect(bob_token)
    bob_laptop.connect(login(raw_server, "bob", "laptop"), device="laptop")

    # Before the removal Bob takes part: he gets Alice's message and sends one.
    before = post(alice, group, 1, b"before")
    post(bob_phone, group, 1, b"bob was here")
    response = alice_api.call("DELETE", f"/v1/groups/{group}/members/bob")
    assert response.status_code == 204, response.text
    for device in (bob_phone, bob_laptop):
        wait_for_removal(device)

    # After it: a message, typing, a read that reaches the senders, and an
    # edit and a recall of a message Bob holds.
    post(alice, group, 2, b"after")
    alice.send(pb.Typing(group=group, active=True))
    carol.send(pb.Typing(group=group, active=True))
    carol.send(pb.ChangeRequest(request_id=1, kind=pb.CHANGE_READ, group=group))
    for request_id, kind in ((2, pb.CHANGE_EDIT), (3, pb.CHANGE_RECALL)):
        alice.send(
            pb.ChangeRequest(
                request_id=request_id, kind=kind, message_id=before.id, body=b"new"
            )
        )
        ack = alice.expect(FrameType.CHANGE_ACK, skip=CHATTER)
        assert isinstance(ack, pb.ChangeAck)
        assert ack.seq > 0
    carol.expect(FrameType.CHANGE_ACK, skip=CHATTER)
    for device in (bob_phone, bob_laptop):
        assert_nothing_pending(device)

    # Bob can neither post nor type there, and his sync stops at the removal.
    bob_phone.send(pb.Send(group=group, client_id=2, body=b"still here?"))
    assert expect_error(bob_phone).code == ErrorCode.NOT_A_MEMBER
    bob_phone.send(pb.Typing(group=group, active=True))
    assert expect_error(bob_phone).code == ErrorCode.NOT_A_MEMBER
    bob_laptop.send(pb.SyncRequest(after_seq=0))
    page = bob_laptop.expect(FrameType.SYNC_RESPONSE)
    assert isinstance(page, pb.SyncResponse)
    last = page.messages[-1]
    assert notice_of(last)["event"] == "member_removed"
    assert notice_of(last)["users"] == [bob_id]
    assert page.head_seq == last.seq
    # His history still shows the recall, on the one stored copy, but no
    # entry about it reached his inbox.
    texts = [(m.body, m.state) for m in page.messages if m.content_type == 0]
    assert texts == [
        (b"", pb.MESSAGE_STATE_RECALLED),
        (b"bob was here", pb.MESSAGE_STATE_NORMAL),
    ]
    assert_nothing_pending(bob_laptop)
