"""Recall, edit and delete-for-me against a real server, over raw frames."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.fixtures import SHORT_TIMEOUTS
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


def online(
    server: ServerProcess, token: str, device: str = "dev1", last_seq: int = 0
) -> tuple[RawClient, pb.Connected]:
    client = RawClient(server.tcp_address)
    connected = client.connect(token, device=device, last_seq=last_seq)
    return client, connected


def send(client: RawClient, to: int, client_id: int, body: bytes) -> pb.SendAck:
    client.send(pb.Send(to=to, client_id=client_id, body=body))
    ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    return ack


def change(
    client: RawClient, request_id: int, kind: int, message_id: int, **fields: Any
) -> None:
    client.send(
        pb.ChangeRequest(
            request_id=request_id, kind=kind, message_id=message_id, **fields
        )
    )


def test_recall_replaces_on_every_device(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, phone_token = create_user(raw_server.base_url, "bob", device="phone")
    laptop_token = login(raw_server, "bob", "laptop")
    alice, _ = online(raw_server, alice_token)
    phone, _ = online(raw_server, phone_token, "phone")
    laptop, _ = online(raw_server, laptop_token, "laptop")
    sent = send(alice, bob_id, 1, b"wrong chat")
    for device in (phone, laptop):
        assert expect_message(device).unread == 1

    change(alice, 5, pb.CHANGE_RECALL, sent.id)

    entry = expect_message(alice)
    ack = expect_change_ack(alice)
    assert (entry.change, entry.target, entry.body) == (pb.CHANGE_RECALL, sent.id, b"")
    assert (ack.request_id, ack.seq, ack.id) == (5, entry.seq, entry.id)
    for device in (phone, laptop):
        recall = expect_message(device)
        assert (recall.change, recall.target) == (pb.CHANGE_RECALL, sent.id)
        assert (recall.sender, recall.recipient) == (alice_id, bob_id)
        assert (recall.seq, recall.unread) == (2, 0)
    for client in (alice, phone, laptop):
        assert_nothing_pending(client)


def test_offline_device_gets_recall_on_sync(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    alice, _ = online(raw_server, alice_token)
    bob, _ = online(raw_server, bob_token)
    sent = send(alice, bob_id, 1, b"secret")
    assert expect_message(bob).body == b"secret"
    bob.close()

    change(alice, 1, pb.CHANGE_RECALL, sent.id)
    expect_message(alice)
    expect_change_ack(alice)

    # Bob's device reconnects from its cursor and gets the recall entry.
    bob, connected = online(raw_server, bob_token, last_seq=1)
    [recall] = connected.sync.messages
    assert (recall.change, recall.target, recall.unread) == (
        pb.CHANGE_RECALL,
        sent.id,
        0,
    )
    # A device that syncs from the start sees the message as recalled.
    bob.close()
    _, fresh = online(raw_server, bob_token, last_seq=0)
    original, recall_again = fresh.sync.messages
    assert original.id == sent.id
    assert original.state == pb.MESSAGE_STATE_RECALLED
    assert original.body == b""
    assert recall_again == recall


def test_recall_errors(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    _, carol_token = create_user(raw_server.base_url, "carol")
    alice, _ = online(raw_server, alice_token)
    bob, _ = online(raw_server, bob_token)
    carol, _ = online(raw_server, carol_token)
    sent = send(alice, bob_id, 1, b"hi")
    bob.drain()
    response = call(raw_server, alice_token, "POST", "/v1/groups", {"name": "g"})
    assert response.status_code == 201, response.text
    notice = expect_message(alice)
    assert notice.sender == alice_id

    change(bob, 1, pb.CHANGE_RECALL, sent.id)
    change(carol, 2, pb.CHANGE_RECALL, sent.id)
    change(bob, 3, pb.CHANGE_RECALL, 999_999)
    change(alice, 4, pb.CHANGE_RECALL, notice.id)

    not_sender = expect_error(bob)
    assert (not_sender.code, not_sender.request_id) == (ErrorCode.NOT_SENDER, 1)
    assert expect_error(carol).code == ErrorCode.MESSAGE_NOT_FOUND
    unknown = expect_error(bob)
    assert (unknown.code, unknown.request_id) == (ErrorCode.MESSAGE_NOT_FOUND, 3)
    assert "999999" in unknown.reason
    notice_error = expect_error(alice)
    assert notice_error.code == ErrorCode.INVALID_ARGUMENT
    assert notice_error.fatal is False

    # A second recall succeeds without a second entry.
    change(alice, 5, pb.CHANGE_RECALL, sent.id)
    expect_message(alice)
    assert expect_change_ack(alice).seq > 0
    change(alice, 6, pb.CHANGE_RECALL, sent.id)
    again = expect_change_ack(alice)
    assert (again.request_id, again.seq, again.id) == (6, 0, 0)
    for client in (alice, carol):
        assert_nothing_pending(client)


def test_recall_right_after_send(raw_server: ServerProcess) -> None:
    bob_id, _ = create_user(raw_server.base_url, "bob")
    _, alice_token = create_user(raw_server.base_url, "alice")
    alice, _ = online(raw_server, alice_token)

    # The Send and the Change leave in one write; the server stores the
    # message before it recalls it.
    alice.send_bytes(
        alice.protocol.send(pb.Send(to=bob_id, client_id=1, body=b"typo"))
        + alice.protocol.send(
            pb.ChangeRequest(request_id=1, kind=pb.CHANGE_RECALL, message_id=1)
        )
    )

    ack = alice.expect(FrameType.SEND_ACK)
    assert isinstance(ack, pb.SendAck)
    assert ack.id == 1
    assert expect_message(alice).change == pb.CHANGE_RECALL
    assert expect_change_ack(alice).request_id == 1


def test_edit_reaches_both_sides(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    alice, _ = online(raw_server, alice_token)
    bob, _ = online(raw_server, bob_token)
    sent = send(alice, bob_id, 1, b"see you at 5")
    expect_message(bob)

    change(alice, 1, pb.CHANGE_EDIT, sent.id, body=b"see you at 6")

    for client in (alice, bob):
        edit = expect_message(client)
        assert (edit.change, edit.target) == (pb.CHANGE_EDIT, sent.id)
        assert edit.body == b"see you at 6"
        assert edit.sender == alice_id
    ack = expect_change_ack(alice)
    bob.close()
    _, fresh = online(raw_server, bob_token, last_seq=0)
    original = fresh.sync.messages[0]
    assert original.body == b"see you at 6"
    assert original.edited_at == ack.changed_at
    assert original.state == pb.MESSAGE_STATE_NORMAL


def test_edit_errors(raw_server: ServerProcess) -> None:
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    _, alice_token = create_user(raw_server.base_url, "alice")
    alice, _ = online(raw_server, alice_token)
    bob, _ = online(raw_server, bob_token)
    sent = send(alice, bob_id, 1, b"hello")
    recalled = send(alice, bob_id, 2, b"gone")
    bob.drain()
    change(alice, 1, pb.CHANGE_RECALL, recalled.id)
    expect_message(alice)
    expect_change_ack(alice)
    assert expect_message(bob).change == pb.CHANGE_RECALL

    change(alice, 2, pb.CHANGE_EDIT, sent.id, body=b"\xff\xfe")
    change(alice, 3, pb.CHANGE_EDIT, sent.id, body=b"x" * 3900)
    change(alice, 4, pb.CHANGE_EDIT, recalled.id, body=b"back")
    change(bob, 5, pb.CHANGE_EDIT, sent.id, body=b"not mine")
    change(alice, 6, pb.CHANGE_EDIT, sent.id, body=b"hello")

    assert expect_error(alice).code == ErrorCode.INVALID_MESSAGE
    too_large = expect_error(alice)
    assert too_large.code == ErrorCode.INVALID_MESSAGE
    assert "3900 bytes" in too_large.reason
    assert expect_error(alice).code == ErrorCode.MESSAGE_RECALLED
    assert expect_error(bob).code == ErrorCode.NOT_SENDER
    # An edit to the same body changes nothing.
    assert expect_change_ack(alice).seq == 0
    assert_nothing_pending(bob)


def test_delete_stays_with_its_user(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, phone_token = create_user(raw_server.base_url, "bob", device="phone")
    laptop_token = login(raw_server, "bob", "laptop")
    alice, _ = online(raw_server, alice_token)
    phone, _ = online(raw_server, phone_token, "phone")
    laptop, _ = online(raw_server, laptop_token, "laptop")
    sent = send(alice, bob_id, 1, b"spam")
    phone.drain()
    laptop.drain()

    change(phone, 1, pb.CHANGE_DELETE, sent.id)

    for device in (phone, laptop):
        entry = expect_message(device)
        assert (entry.change, entry.target, entry.unread) == (
            pb.CHANGE_DELETE,
            sent.id,
            0,
        )
        assert (entry.sender, entry.recipient) == (bob_id, alice_id)
    assert expect_change_ack(phone).request_id == 1
    assert_nothing_pending(alice)
    phone.close()
    _, fresh = online(raw_server, phone_token, "phone", last_seq=0)
    assert fresh.sync.messages[0].state == pb.MESSAGE_STATE_DELETED
    assert fresh.sync.messages[0].body == b""
    history = call(raw_server, phone_token, "GET", "/v1/conversations/alice/messages")
    assert history.json()["messages"] == []


@pytest.fixture
def short_windows(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        **SHORT_TIMEOUTS,
        "SWITCHBOARD_RECALL_WINDOW": "1",
        "SWITCHBOARD_EDIT_WINDOW": "1",
    }
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", env)
    server.start()
    yield server
    server.terminate()


def test_windows_pass(short_windows: ServerProcess) -> None:
    bob_id, _ = create_user(short_windows.base_url, "bob")
    _, alice_token = create_user(short_windows.base_url, "alice")
    alice, _ = online(short_windows, alice_token)
    sent = send(alice, bob_id, 1, b"too late")
    time.sleep(2.5)

    change(alice, 1, pb.CHANGE_RECALL, sent.id)
    change(alice, 2, pb.CHANGE_EDIT, sent.id, body=b"also too late")

    recall = expect_error(alice)
    assert (recall.code, recall.request_id) == (ErrorCode.WINDOW_PASSED, 1)
    assert "within 1 s" in recall.reason
    edit = expect_error(alice)
    assert (edit.code, edit.request_id) == (ErrorCode.WINDOW_PASSED, 2)
    # Deleting for oneself has no window.
    change(alice, 3, pb.CHANGE_DELETE, sent.id)
    expect_message(alice)
    assert expect_change_ack(alice).seq > 0


def test_http_changes(raw_server: ServerProcess) -> None:
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    _, alice_token = create_user(raw_server.base_url, "alice")
    alice, _ = online(raw_server, alice_token)
    first = send(alice, bob_id, 1, b"one")
    second = send(alice, bob_id, 2, b"two")

    edited = call(
        raw_server, alice_token, "PATCH", f"/v1/messages/{first.id}", {"text": "uno"}
    )
    recalled = call(raw_server, alice_token, "POST", f"/v1/messages/{second.id}/recall")
    again = call(raw_server, alice_token, "POST", f"/v1/messages/{second.id}/recall")
    deleted = call(raw_server, bob_token, "DELETE", f"/v1/messages/{first.id}")

    assert edited.status_code == 200, edited.text
    assert edited.json()["changed"] is True
    assert edited.json()["message_id"] == first.id
    assert recalled.json()["changed"] is True
    assert recalled.json()["seq"] > 0
    assert again.json() == {
        "message_id": second.id,
        "changed": False,
        "id": 0,
        "seq": 0,
        "changed_at": 0,
        "unread": 0,
    }
    assert deleted.json()["changed"] is True
    history = call(raw_server, alice_token, "GET", "/v1/conversations/bob/messages")
    messages = {m["id"]: m for m in history.json()["messages"]}
    assert messages[first.id]["text"] == "uno"
    assert messages[first.id]["edited_at"] > 0
    assert messages[second.id]["text"] == ""
    assert messages[second.id]["recalled_at"] > 0


def test_http_change_errors(raw_server: ServerProcess) -> None:
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    _, alice_token = create_user(raw_server.base_url, "alice")
    alice, _ = online(raw_server, alice_token)
    sent = send(alice, bob_id, 1, b"hi")

    not_sender = call(raw_server, bob_token, "POST", f"/v1/messages/{sent.id}/recall")
    missing = call(raw_server, alice_token, "DELETE", "/v1/messages/999")
    both = call(
        raw_server,
        alice_token,
        "PATCH",
        f"/v1/messages/{sent.id}",
        {"text": "a", "body_b64": "YQ=="},
    )
    # JSON allows a lone surrogate, which UTF-8 cannot encode.
    bad_text = httpx.patch(
        f"{raw_server.base_url}/v1/messages/{sent.id}",
        content=b'{"text": "\\ud800"}',
        headers={
            "authorization": f"Bearer {alice_token}",
            "content-type": "application/json",
        },
    )
    bad_b64 = call(
        raw_server, alice_token, "PATCH", f"/v1/messages/{sent.id}", {"body_b64": "%%"}
    )

    assert not_sender.status_code == 403
    assert not_sender.json()["error"]["code"] == "not_sender"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "message_not_found"
    assert both.status_code == 422
    assert bad_text.status_code == 400
    assert bad_text.json()["error"]["code"] == "invalid_message"
    assert bad_b64.status_code == 400
    assert "base64" in bad_b64.json()["error"]["message"]
