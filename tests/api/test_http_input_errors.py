"""Input errors of the HTTP API and the socket read as clear, user-facing text."""

from __future__ import annotations

import json

import httpx
import pytest

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def post_message(
    server: ServerProcess, token: str, content: bytes
) -> tuple[int, str, str]:
    response = httpx.post(
        server.base_url + "/v1/messages",
        content=content,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    return error_of(response)


def test_gateways_report_size_limits(raw_server: ServerProcess) -> None:
    body = httpx.get(raw_server.base_url + "/v1/gateways").json()
    assert body["max_frame_size"] == 4096
    assert body["max_body_size"] == 3800


def test_missing_field_is_named(raw_server: ServerProcess) -> None:
    response = httpx.post(raw_server.base_url + "/v1/accounts", json={"name": "ann"})
    assert error_of(response) == (
        422,
        "invalid_request",
        "invalid request: field 'password' is missing",
    )


def test_bad_query_parameter_is_named(raw_server: ServerProcess) -> None:
    _, token = create_user(raw_server.base_url, "ann")
    create_user(raw_server.base_url, "bob")
    response = httpx.get(
        raw_server.base_url + "/v1/conversations/bob/messages?limit=9999",
        headers={"Authorization": f"Bearer {token}"},
    )
    status, code, message = error_of(response)
    assert (status, code) == (422, "invalid_request")
    assert message.startswith("invalid request: query parameter 'limit': ")
    assert "500" in message
    assert "query.limit" not in message


def test_body_that_is_not_json(raw_server: ServerProcess) -> None:
    _, token = create_user(raw_server.base_url, "ann")
    status, code, message = post_message(raw_server, token, b"{not json")
    assert (status, code) == (422, "invalid_request")
    assert message == "invalid request: the request body is not valid JSON"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_over_http(raw_server: ServerProcess, text: str) -> None:
    _, token = create_user(raw_server.base_url, "ann")
    create_user(raw_server.base_url, "bob")
    content = json.dumps({"to": "bob", "text": text, "client_id": 1}).encode()
    status, code, message = post_message(raw_server, token, content)
    assert (status, code) == (400, "invalid_message")
    assert "empty or only whitespace" in message


def test_lone_surrogate_text_over_http(raw_server: ServerProcess) -> None:
    _, token = create_user(raw_server.base_url, "ann")
    create_user(raw_server.base_url, "bob")
    content = b'{"to": "bob", "text": "hi \\ud800", "client_id": 1}'
    status, code, message = post_message(raw_server, token, content)
    assert (status, code) == (400, "invalid_message")
    assert "not valid Unicode at position 3" in message


def test_empty_send_on_socket_keeps_connection(raw_server: ServerProcess) -> None:
    ann_id, token = create_user(raw_server.base_url, "ann")
    client = RawClient(raw_server.tcp_address)
    client.connect(token)
    client.send(pb.Send(to=ann_id, client_id=1))
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.client_id == 1
    assert not error.fatal
    client.send(pb.Send(to=ann_id, client_id=2, body=b"not empty"))
    # A message to oneself is pushed to the sending connection too.
    ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    assert ack.client_id == 2


def test_history_has_callers_seq(raw_server: ServerProcess) -> None:
    url = raw_server.base_url
    _, ann = create_user(url, "ann")
    _, bob = create_user(url, "bob")
    _, carol = create_user(url, "carol")
    for token, to, client_id in ((carol, "bob", 1), (ann, "bob", 1), (bob, "ann", 1)):
        response = httpx.post(
            url + "/v1/messages",
            json={"to": to, "text": "hi", "client_id": client_id},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text

    def seqs(token: str, peer: str) -> list[int]:
        response = httpx.get(
            f"{url}/v1/conversations/{peer}/messages",
            headers={"Authorization": f"Bearer {token}"},
        )
        return [message["seq"] for message in response.json()["messages"]]

    # Newest first: bob's reply, then ann's message.
    assert seqs(ann, "bob") == [2, 1]
    assert seqs(bob, "ann") == [3, 2]
