"""Group chat against a real server: fan-out, removal, roles and limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.fixtures import SHORT_TIMEOUTS
from tests.support.rawclient import (
    RawClient,
    assert_nothing_pending,
    create_user,
    expect_error,
    expect_message,
)
from tests.support.server import ServerProcess


class Api:
    """HTTP calls made with one user's token."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.base_url = server.base_url
        self.headers = {"authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method, self.base_url + path, json=body, headers=self.headers
        )


def login(server: ServerProcess, name: str, device: str) -> str:
    response = httpx.post(
        server.base_url + "/v1/sessions",
        json={"name": name, "password": "password-" + name, "device": device},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def create_group(api: Api, name: str, members: list[str]) -> int:
    response = api.call("POST", "/v1/groups", {"name": name, "members": members})
    assert response.status_code == 201, response.text
    group_id: int = response.json()["id"]
    return group_id


def notice_of(message: pb.Message) -> dict[str, Any]:
    assert message.content_type == 2
    content: dict[str, Any] = json.loads(message.body)
    return content


def test_group_message_reaches_every_member(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    carol_id, carol_token = create_user(raw_server.base_url, "carol")
    alice_laptop_token = login(raw_server, "alice", "laptop")
    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    alice_laptop = RawClient(raw_server.tcp_address)
    alice_laptop.connect(alice_laptop_token, device="laptop")
    bob = RawClient(raw_server.tcp_address)
    bob.connect(bob_token)

    group_id = create_group(Api(raw_server, alice_token), "trip", ["bob", "carol"])
    for client in (alice, alice_laptop, bob):
        created = notice_of(expect_message(client))
        assert created["event"] == "group_created"
        assert created["group"] == group_id
        assert created["users"] == [alice_id, bob_id, carol_id]
        assert created["by"] == alice_id

    alice.send(
        pb.Send(group=group_id, client_id=1, body=b"hello all", mentions=[carol_id])
    )
    ack = alice.expect(FrameType.SEND_ACK)
    assert isinstance(ack, pb.SendAck)
    assert ack.seq == 2
    for client in (alice_laptop, bob):
        message = expect_message(client)
        assert message.body == b"hello all"
        assert message.group == group_id
        assert message.recipient == 0
        assert message.sender == alice_id
        assert list(message.mentions) == [carol_id]
        assert message.seq == 2
    for client in (alice, alice_laptop, bob):
        assert_nothing_pending(client)

    carol = RawClient(raw_server.tcp_address)
    connected = carol.connect(carol_token)
    bodies = [m.body for m in connected.sync.messages]
    assert len(bodies) == 2
    assert bodies[1] == b"hello all"
    assert connected.sync.messages[1].group == group_id


def test_removed_member_gets_nothing_after(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    create_user(raw_server.base_url, "carol")
    alice_api = Api(raw_server, alice_token)
    group_id = create_group(alice_api, "trip", ["bob", "carol"])
    bob = RawClient(raw_server.tcp_address)
    connected = bob.connect(bob_token)
    assert connected.head_seq == 1

    response = alice_api.call("DELETE", f"/v1/groups/{group_id}/members/bob")
    assert response.status_code == 204, response.text
    removal = expect_message(bob)
    assert notice_of(removal)["event"] == "member_removed"
    assert notice_of(removal)["users"] == [bob_id]

    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    for client_id in (1, 2, 3):
        alice.send(pb.Send(group=group_id, client_id=client_id, body=b"later"))
        alice.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert_nothing_pending(bob)

    bob.send(pb.Send(group=group_id, client_id=1, body=b"still here?"))
    error = expect_error(bob)
    assert error.code == ErrorCode.NOT_A_MEMBER
    assert error.client_id == 1
    assert error.fatal is False

    bob.send(pb.SyncRequest(after_seq=0))
    page = bob.expect(FrameType.SYNC_RESPONSE)
    assert isinstance(page, pb.SyncResponse)
    assert [m.seq for m in page.messages] == [1, 2]
    assert page.messages[-1] == removal
    assert page.head_seq == 2

    bob_api = Api(raw_server, bob_token)
    response = bob_api.call("GET", f"/v1/groups/{group_id}/messages")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"
    assert bob_api.call("GET", "/v1/groups").json() == {"groups": []}


def test_member_leaves_group(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    _, bob_token = create_user(raw_server.base_url, "bob")
    group_id = create_group(Api(raw_server, alice_token), "trip", ["bob"])

    response = Api(raw_server, bob_token).call(
        "DELETE", f"/v1/groups/{group_id}/members/bob"
    )
    assert response.status_code == 204, response.text
    response = Api(raw_server, alice_token).call(
        "DELETE", f"/v1/groups/{group_id}/members/alice"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"

    history = Api(raw_server, alice_token).call(
        "GET", f"/v1/groups/{group_id}/messages"
    )
    events = [json.loads(m["text"])["event"] for m in history.json()["messages"]]
    assert events == ["member_left", "group_created"]


def test_roles_limit_who_may_kick(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    _, bob_token = create_user(raw_server.base_url, "bob")
    create_user(raw_server.base_url, "carol")
    alice_api = Api(raw_server, alice_token)
    bob_api = Api(raw_server, bob_token)
    group_id = create_group(alice_api, "trip", ["bob", "carol"])
    kick_carol = f"/v1/groups/{group_id}/members/carol"

    response = bob_api.call("DELETE", kick_carol)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    response = bob_api.call(
        "PUT", f"/v1/groups/{group_id}/members/bob/role", {"role": "admin"}
    )
    assert response.status_code == 403

    response = alice_api.call(
        "PUT", f"/v1/groups/{group_id}/members/bob/role", {"role": "admin"}
    )
    assert response.status_code == 200, response.text
    roles = {m["name"]: m["role"] for m in response.json()["members"]}
    assert roles == {"alice": "owner", "bob": "admin", "carol": "member"}

    response = bob_api.call("DELETE", f"/v1/groups/{group_id}/members/alice")
    assert response.status_code == 403
    response = bob_api.call("DELETE", kick_carol)
    assert response.status_code == 204, response.text
    response = bob_api.call("PATCH", f"/v1/groups/{group_id}", {"name": "trip 2"})
    assert response.status_code == 200
    assert response.json()["name"] == "trip 2"

    details = alice_api.call("GET", f"/v1/groups/{group_id}").json()
    assert [m["name"] for m in details["members"]] == ["alice", "bob"]


def test_group_errors(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    create_user(raw_server.base_url, "bob")
    carol_id, _ = create_user(raw_server.base_url, "carol")
    alice_api = Api(raw_server, alice_token)
    group_id = create_group(alice_api, "trip", ["bob"])
    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)

    alice.send(pb.Send(group=group_id, client_id=1, body=b"hi", mentions=[carol_id]))
    error = expect_error(alice)
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.client_id == 1

    alice.send(pb.Send(group=group_id + 100, client_id=2, body=b"hi"))
    error = expect_error(alice)
    assert error.code == ErrorCode.GROUP_NOT_FOUND
    assert error.client_id == 2

    alice.send(pb.Send(group=group_id, to=carol_id, client_id=3, body=b"hi"))
    assert expect_error(alice).code == ErrorCode.INVALID_MESSAGE

    alice.send(pb.Send(group=group_id, client_id=4, body=b"{}", content_type=2))
    assert expect_error(alice).code == ErrorCode.INVALID_MESSAGE
    assert_nothing_pending(alice)

    response = alice_api.call("GET", f"/v1/groups/{group_id + 100}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "group_not_found"
    response = alice_api.call(
        "POST", f"/v1/groups/{group_id}/members", {"names": ["bob"]}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_member"
    response = alice_api.call(
        "POST", f"/v1/groups/{group_id}/members", {"names": ["nobody"]}
    )
    assert response.status_code == 404


def test_group_size_limit(tmp_path: Path) -> None:
    env = {**SHORT_TIMEOUTS, "SWITCHBOARD_MAX_GROUP_SIZE": "3"}
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", env)
    server.start()
    try:
        _, token = create_user(server.base_url, "alice")
        for name in ("bob", "carol", "dave"):
            create_user(server.base_url, name)
        api = Api(server, token)

        response = api.call(
            "POST", "/v1/groups", {"name": "big", "members": ["bob", "carol", "dave"]}
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "group_full"
        assert "the maximum is 3" in response.json()["error"]["message"]

        group_id = create_group(api, "small", ["bob", "carol"])
        response = api.call(
            "POST", f"/v1/groups/{group_id}/members", {"names": ["dave"]}
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "group_full"
    finally:
        server.terminate()
