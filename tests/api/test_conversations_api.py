"""GET /v1/conversations against a real server."""

from __future__ import annotations

from typing import Any

import httpx

from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


def get(server: ServerProcess, token: str, **params: Any) -> httpx.Response:
    return httpx.get(
        server.base_url + "/v1/conversations",
        params=params,
        headers={"authorization": f"Bearer {token}"},
    )


def send(client: RawClient, to: int, client_id: int, body: bytes) -> None:
    client.send(pb.Send(to=to, client_id=client_id, body=body))
    client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))


def test_list_shape(raw_server: ServerProcess) -> None:
    alice_id, alice_token = create_user(raw_server.base_url, "alice")
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    alice = RawClient(raw_server.tcp_address)
    alice.connect(alice_token)
    send(alice, bob_id, 1, b"hello bob")
    send(alice, bob_id, 2, b"x" * 300)

    response = get(raw_server, bob_token)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["has_more"] is False
    assert body["head_seq"] == 2
    assert body["total_unread"] == 2
    [conversation] = body["conversations"]
    assert conversation["peer_id"] == alice_id
    assert conversation["group_id"] == 0
    assert conversation["name"] == "alice"
    assert conversation["unread"] == 2
    assert conversation["read_id"] == 0
    assert conversation["peer_read_id"] == 0
    last = conversation["last"]
    assert last["from"] == "alice"
    assert last["from_id"] == alice_id
    assert last["seq"] == 2
    assert last["content_type"] == 0
    assert last["text"] == "x" * 256
    assert last["truncated"] is True
    assert "body_b64" not in last


def test_list_pages(raw_server: ServerProcess) -> None:
    bob_id, bob_token = create_user(raw_server.base_url, "bob")
    for name in ("ann", "cid", "dee"):
        _, token = create_user(raw_server.base_url, name)
        client = RawClient(raw_server.tcp_address)
        client.connect(token)
        send(client, bob_id, 1, f"from {name}".encode())

    first = get(raw_server, bob_token, limit=2).json()
    before = first["conversations"][-1]["last"]["id"]
    second = get(raw_server, bob_token, limit=2, before=before).json()

    assert [c["name"] for c in first["conversations"]] == ["dee", "cid"]
    assert first["has_more"] is True
    assert [c["name"] for c in second["conversations"]] == ["ann"]
    assert second["has_more"] is False


def test_group_notice_is_text(raw_server: ServerProcess) -> None:
    _, alice_token = create_user(raw_server.base_url, "alice")
    response = httpx.post(
        raw_server.base_url + "/v1/groups",
        json={"name": "solo", "members": []},
        headers={"authorization": f"Bearer {alice_token}"},
    )
    assert response.status_code == 201, response.text

    [conversation] = get(raw_server, alice_token).json()["conversations"]

    assert conversation["name"] == "solo"
    assert conversation["unread"] == 0
    assert conversation["last"]["content_type"] == 2
    assert '"event":"group_created"' in conversation["last"]["text"]


def test_list_rejects_bad_requests(raw_server: ServerProcess) -> None:
    _, token = create_user(raw_server.base_url, "alice")

    missing = httpx.get(raw_server.base_url + "/v1/conversations")
    too_large = get(raw_server, token, limit=201)
    zero = get(raw_server, token, limit=0)

    assert missing.status_code == 401
    assert too_large.status_code == 422
    assert "limit" in too_large.json()["error"]["message"]
    assert zero.status_code == 422
    spec = httpx.get(raw_server.base_url + "/openapi.json").json()
    assert "/v1/conversations" in spec["paths"]
