"""HTTP API against a real server: accounts, logins, lookups, discovery."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def test_healthz(raw_server: ServerProcess) -> None:
    response = httpx.get(raw_server.base_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_lists_every_route(raw_server: ServerProcess) -> None:
    spec = httpx.get(raw_server.base_url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/v1/accounts",
        "/v1/sessions",
        "/v1/sessions/current",
        "/v1/users/{name}",
        "/v1/conversations/{peer}/messages",
        "/v1/gateways",
        "/healthz",
    ):
        assert path in spec["paths"]


def test_account_name_taken(raw_server: ServerProcess) -> None:
    create_user(raw_server.base_url, "ann")
    response = httpx.post(
        raw_server.base_url + "/v1/accounts",
        json={"name": "ann", "password": "another-password"},
    )
    status, code, message = error_of(response)
    assert (status, code) == (409, "name_taken")
    assert "'ann'" in message


@pytest.mark.parametrize(
    ("name", "password", "fragment"),
    [
        ("Bad Name", "long-enough", "invalid name"),
        ("", "long-enough", "invalid name"),
        ("x" * 33, "long-enough", "invalid name"),
        ("fine", "short", "invalid password"),
    ],
)
def test_account_invalid_input(
    raw_server: ServerProcess, name: str, password: str, fragment: str
) -> None:
    response = httpx.post(
        raw_server.base_url + "/v1/accounts", json={"name": name, "password": password}
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_argument")
    assert fragment in message


def test_account_missing_field(raw_server: ServerProcess) -> None:
    response = httpx.post(raw_server.base_url + "/v1/accounts", json={"name": "ann"})
    status, code, message = error_of(response)
    assert (status, code) == (422, "invalid_request")
    assert "password" in message


def test_login_wrong_password(raw_server: ServerProcess) -> None:
    create_user(raw_server.base_url, "ann")
    response = httpx.post(
        raw_server.base_url + "/v1/sessions",
        json={"name": "ann", "password": "wrong-password", "device": "d"},
    )
    assert error_of(response)[:2] == (401, "invalid_credentials")
    response = httpx.post(
        raw_server.base_url + "/v1/sessions",
        json={"name": "nobody", "password": "wrong-password", "device": "d"},
    )
    assert error_of(response)[:2] == (401, "invalid_credentials")


@pytest.mark.parametrize(
    ("device", "platform", "fragment"),
    [("bad device!", "cli", "invalid device id"), ("d", "palmos", "invalid platform")],
)
def test_login_invalid_device_or_platform(
    raw_server: ServerProcess, device: str, platform: str, fragment: str
) -> None:
    create_user(raw_server.base_url, "ann")
    response = httpx.post(
        raw_server.base_url + "/v1/sessions",
        json={
            "name": "ann",
            "password": "password-ann",
            "device": device,
            "platform": platform,
        },
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_argument")
    assert fragment in message


def test_user_lookup(raw_server: ServerProcess) -> None:
    ann_id, token = create_user(raw_server.base_url, "ann")
    bob_id, _ = create_user(raw_server.base_url, "bob")
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.get(raw_server.base_url + "/v1/users/bob", headers=headers)
    assert response.json() == {"id": bob_id, "name": "bob"}
    response = httpx.get(raw_server.base_url + "/v1/users/zed", headers=headers)
    assert error_of(response)[:2] == (404, "user_not_found")
    response = httpx.get(
        raw_server.base_url + "/v1/users",
        params=[("id", ann_id), ("id", bob_id), ("id", 999)],
        headers=headers,
    )
    assert response.json() == {
        "users": [{"id": ann_id, "name": "ann"}, {"id": bob_id, "name": "bob"}]
    }


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Basic abc", "Bearer not-a-real-token"]
)
def test_requests_without_valid_token_are_rejected(
    raw_server: ServerProcess, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = httpx.get(raw_server.base_url + "/v1/users/ann", headers=headers)
    status, code, _ = error_of(response)
    assert (status, code) == (401, "unauthorized")


def test_history_of_unknown_peer(raw_server: ServerProcess) -> None:
    _, token = create_user(raw_server.base_url, "ann")
    response = httpx.get(
        raw_server.base_url + "/v1/conversations/zed/messages",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert error_of(response)[:2] == (404, "user_not_found")


def test_gateways_lists_tcp_and_websocket(raw_server: ServerProcess) -> None:
    body = httpx.get(raw_server.base_url + "/v1/gateways").json()
    assert body["gateways"] == [
        {"transport": "tcp", "address": f"127.0.0.1:{raw_server.tcp_port}"},
        {"transport": "ws", "url": f"ws://127.0.0.1:{raw_server.http_port}/v1/ws"},
    ]
    assert body["heartbeat"] == 2
    assert body["max_heartbeat"] == 600
    # The advertised TCP address really is a gateway.
    _, token = create_user(raw_server.base_url, "ann")
    client = RawClient(raw_server.tcp_address)
    assert client.connect(token).user_id > 0


def seconds_until_closed(
    sock: socket.socket, trickle: bytes, limit: float = 6
) -> float:
    """Send ``trickle`` every 0.5 s and return when the server closed ``sock``.

    Fails the test when it stays open for ``limit`` seconds.
    """
    started = time.monotonic()
    while time.monotonic() - started < limit:
        time.sleep(0.5)
        try:
            if trickle:
                sock.sendall(trickle)
            sock.settimeout(0.01)
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    raise AssertionError(f"the server kept the connection open for {limit} s")


def test_slow_request_head_is_closed_at_deadline(raw_server: ServerProcess) -> None:
    # Half a WebSocket handshake, then one byte each 0.5 s: the 2 s deadline
    # applies whatever the client trickles.
    sock = socket.create_connection(("127.0.0.1", raw_server.http_port), timeout=10)
    with sock:
        sock.sendall(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        closed_after = seconds_until_closed(sock, b"X")
    assert 1.5 <= closed_after <= 3.5
    assert httpx.get(raw_server.base_url + "/healthz").status_code == 200


def test_second_request_head_has_deadline(raw_server: ServerProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", raw_server.http_port), timeout=10)
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed_after = seconds_until_closed(sock, b"X")
    assert 1.5 <= closed_after <= 3.5


def test_stalled_request_body_is_closed(raw_server: ServerProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", raw_server.http_port), timeout=10)
    with sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        closed_after = seconds_until_closed(sock, b"")
    assert 1.5 <= closed_after <= 3.5
    assert httpx.get(raw_server.base_url + "/healthz").status_code == 200


def test_slow_steady_request_body_is_served(raw_server: ServerProcess) -> None:
    _, token = create_user(raw_server.base_url, "ann")
    create_user(raw_server.base_url, "bob")
    body = b'{"to": "bob", "text": "hi", "client_id": 1}'
    head = (
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", raw_server.http_port), timeout=10)
    with sock:
        sock.sendall(head.encode())
        # Eight pieces 0.5 s apart: 4 s in all, longer than every timeout,
        # but never 2 s without a byte.
        for index in range(0, len(body), 6):
            time.sleep(0.5)
            sock.sendall(body[index : index + 6])
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 201")


def test_send_over_http_is_delivered_and_deduplicated(
    raw_server: ServerProcess,
) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob")
    receiver = RawClient(raw_server.tcp_address)
    receiver.connect(bob)
    ann_device = RawClient(raw_server.tcp_address)
    ann_device.connect(ann)
    headers = {"Authorization": f"Bearer {ann}"}
    request = {"to": "bob", "text": "over http", "client_id": 5}
    first = httpx.post(
        raw_server.base_url + "/v1/messages", json=request, headers=headers
    )
    assert first.status_code == 201
    body = first.json()
    assert body["client_id"] == 5
    assert body["seq"] == 1
    assert body["duplicate"] is False
    again = httpx.post(
        raw_server.base_url + "/v1/messages", json=request, headers=headers
    )
    assert again.json() == {**body, "duplicate": True}
    # Both the recipient and the sender's connected device get it, once. A
    # live push names the recipient only to others than the recipient.
    for client, recipient in ((receiver, 0), (ann_device, bob_id)):
        message = client.expect(FrameType.MESSAGE)
        assert isinstance(message, pb.Message)
        assert (message.seq, message.body, message.recipient) == (
            1,
            b"over http",
            recipient,
        )
        client.send_bytes(b"\x00")
        assert client.receive() is None
        assert client.pending == []


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        ({"to": "zed", "text": "x", "client_id": 1}, 404, "user_not_found"),
        ({"to": "bob", "text": "x", "client_id": 0}, 422, "invalid_request"),
        ({"to": "bob", "text": "x" * 20_000, "client_id": 1}, 400, "invalid_message"),
        ({"to": "bob", "client_id": 1}, 422, "invalid_request"),
    ],
)
def test_send_over_http_rejects_bad_input(
    raw_server: ServerProcess, request_body: dict[str, object], status: int, code: str
) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    create_user(raw_server.base_url, "bob")
    response = httpx.post(
        raw_server.base_url + "/v1/messages",
        json=request_body,
        headers={"Authorization": f"Bearer {ann}"},
    )
    assert error_of(response)[:2] == (status, code)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/accounts", {"name": "sur", "password": "\ud800abcdefgh"}),
        ("/v1/sessions", {"name": "ann", "password": "\ud800abcdefgh", "device": "d"}),
        ("/v1/sessions", {"name": "\ud800", "password": "abcdefghij", "device": "d"}),
    ],
)
def test_lone_surrogates_are_invalid_input(
    raw_server: ServerProcess, path: str, body: dict[str, str]
) -> None:
    create_user(raw_server.base_url, "ann")
    # httpx would refuse to encode a lone surrogate; send the JSON escape.
    content = json.dumps(body).encode()
    response = httpx.post(
        raw_server.base_url + path,
        content=content,
        headers={"Content-Type": "application/json"},
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_argument")
    assert "not valid Unicode" in message


def test_unknown_route_uses_error_shape(raw_server: ServerProcess) -> None:
    response = httpx.get(raw_server.base_url + "/v1/nothing-here")
    assert error_of(response)[:2] == (404, "not_found")
    response = httpx.put(raw_server.base_url + "/healthz")
    assert error_of(response)[:2] == (405, "method_not_allowed")


def test_oversized_json_body_is_rejected_unread(raw_server: ServerProcess) -> None:
    body = b'{"name": "ann", "password": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    response = httpx.post(
        raw_server.base_url + "/v1/accounts",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert error_of(response)[:2] == (413, "content_too_large")
    assert httpx.get(raw_server.base_url + "/healthz").status_code == 200
