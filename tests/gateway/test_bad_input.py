"""Bad input against a real server: each gets a coded error, others are unaffected."""

from __future__ import annotations

import time

import httpx
import pytest

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from switchboard.protocol.framing import encode_frame, encode_varint
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


def fatal_error(client: RawClient) -> pb.Error:
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.fatal
    client.expect_closed()
    return error


def assert_others_unaffected(server: ServerProcess, token: str, peer_id: int) -> None:
    client = RawClient(server.tcp_address)
    client.connect(token)
    client.send(pb.Send(to=peer_id, client_id=1, body=b"still here"))
    # Pushes of the user's own earlier messages may arrive first.
    ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    assert ack.client_id == 1
    client.close()


@pytest.fixture
def users(raw_server: ServerProcess) -> dict[str, tuple[int, str]]:
    return {name: create_user(raw_server.base_url, name) for name in ("ann", "bob")}


def test_oversized_frame_closes_connection(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    bystander = RawClient(raw_server.tcp_address)
    bystander.connect(users["bob"][1])
    client = RawClient(raw_server.tcp_address)
    client.send_bytes(encode_varint(4097))
    error = fatal_error(client)
    assert error.code == ErrorCode.FRAME_TOO_LARGE
    assert "4097" in error.reason
    bystander.send(pb.Send(to=users["ann"][0], client_id=1, body=b"hi"))
    assert bystander.expect(FrameType.SEND_ACK).client_id == 1  # type: ignore[attr-defined]


def padded_cursor_frame(frame_size: int) -> bytes:
    """Return a Cursor frame of ``frame_size`` bytes after the length prefix.

    The padding is an unknown field (number 100), which receivers skip.
    """
    padding = frame_size - 1 - 2 - 2  # type byte, field tag, 2-byte length
    assert 128 <= padding < 16384
    payload = encode_varint((100 << 3) | 2) + encode_varint(padding) + b"p" * padding
    assert len(payload) + 1 == frame_size
    return encode_frame(FrameType.CURSOR, payload)


def test_frame_at_limit_accepted_one_more_rejected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.connect(users["ann"][1])
    client.send_bytes(padded_cursor_frame(4096))
    client.send(pb.Send(to=users["bob"][0], client_id=1, body=b"after padding"))
    assert client.expect(FrameType.SEND_ACK).client_id == 1  # type: ignore[attr-defined]
    client.send_bytes(padded_cursor_frame(4097))
    assert fatal_error(client).code == ErrorCode.FRAME_TOO_LARGE


def test_body_above_limit_is_rejected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.connect(users["ann"][1])
    client.send(pb.Send(to=users["bob"][0], client_id=1, body=b"x" * 3801))
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert "3801" in error.reason
    assert not error.fatal


def test_malformed_payload_closes_connection(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.send_bytes(encode_frame(FrameType.CONNECT, b"\xff\xff\xff"))
    assert fatal_error(client).code == ErrorCode.PROTOCOL_ERROR
    assert_others_unaffected(raw_server, users["ann"][1], users["bob"][0])


def test_unknown_frame_type_closes_connection(raw_server: ServerProcess) -> None:
    client = RawClient(raw_server.tcp_address)
    client.send_bytes(encode_frame(200, b""))
    error = fatal_error(client)
    assert error.code == ErrorCode.PROTOCOL_ERROR
    assert "200" in error.reason


def test_frame_before_connect_is_rejected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.send_bytes(
        encode_frame(FrameType.SEND, pb.Send(to=1, client_id=1).SerializeToString())
    )
    assert fatal_error(client).code == ErrorCode.NOT_CONNECTED
    assert_others_unaffected(raw_server, users["ann"][1], users["bob"][0])


def test_send_without_recipient_names_the_fields(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.connect(users["ann"][1])
    client.send(pb.Send(client_id=3, body=b"to nobody"))
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.reason == (
        "the message names no recipient; set 'to' to a user id or 'group' to a group id"
    )
    assert (error.client_id, error.fatal) == (3, False)
    assert_others_unaffected(raw_server, users["ann"][1], users["bob"][0])


def test_unknown_recipient_keeps_connection(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.connect(users["ann"][1])
    client.send(pb.Send(to=999_999, client_id=7, body=b"hello?"))
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.UNKNOWN_RECIPIENT
    assert error.client_id == 7
    assert not error.fatal
    client.send(pb.Send(to=users["bob"][0], client_id=8, body=b"hello"))
    assert client.expect(FrameType.SEND_ACK).client_id == 8  # type: ignore[attr-defined]


def test_invalid_utf8_text_is_rejected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.connect(users["ann"][1])
    client.send(pb.Send(to=users["bob"][0], client_id=3, body=b"\xff\xfe"))
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.client_id == 3
    assert not error.fatal


def test_wrong_token_is_rejected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.send(pb.Connect(version=1, token="not-a-token", device="dev1"))
    error = fatal_error(client)
    assert error.code == ErrorCode.UNAUTHORIZED
    assert "log in" in error.reason
    assert_others_unaffected(raw_server, users["ann"][1], users["bob"][0])


def test_token_for_other_device_is_rejected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.send(pb.Connect(version=1, token=users["ann"][1], device="other"))
    error = fatal_error(client)
    assert error.code == ErrorCode.UNAUTHORIZED
    assert "dev1" in error.reason


def test_unsupported_version_is_rejected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.send(pb.Connect(version=99, token=users["ann"][1], device="dev1"))
    error = fatal_error(client)
    assert error.code == ErrorCode.UNSUPPORTED_VERSION
    assert "99" in error.reason


def test_logout_revokes_token_everywhere(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    token = users["ann"][1]
    client = RawClient(raw_server.tcp_address)
    client.connect(token)
    started = time.monotonic()
    response = httpx.delete(
        raw_server.base_url + "/v1/sessions/current",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 204
    error = fatal_error(client)
    assert error.code == ErrorCode.TOKEN_REVOKED
    assert time.monotonic() - started < 2.0
    # The old token works neither on a new connection nor over HTTP.
    again = RawClient(raw_server.tcp_address)
    again.send(pb.Connect(version=1, token=token, device="dev1"))
    assert fatal_error(again).code == ErrorCode.UNAUTHORIZED
    response = httpx.get(
        raw_server.base_url + "/v1/users/bob",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_connection_without_connect_times_out(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    silent = RawClient(raw_server.tcp_address)
    trickle = RawClient(raw_server.tcp_address)
    started = time.monotonic()
    trickle.send_bytes(b"\x00")
    time.sleep(1.0)
    trickle.send_bytes(b"\x00")
    for client in (silent, trickle):
        error = client.expect(FrameType.ERROR, timeout=5)
        assert isinstance(error, pb.Error)
        assert error.code == ErrorCode.AUTH_TIMEOUT
        client.expect_closed()
    # Auth timeout is 2 s; the wheel ticks once a second.
    assert time.monotonic() - started < 2.0 + 1.0 + 0.5
    assert_others_unaffected(raw_server, users["ann"][1], users["bob"][0])


def test_silent_connection_closed_within_timeout_plus_tick(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    # Heartbeat 2 s: timeout 3 s, plus one 1 s tick.
    client = RawClient(raw_server.tcp_address)
    connected = client.connect(users["ann"][1])
    assert connected.heartbeat == 2
    started = time.monotonic()
    error = client.expect(FrameType.ERROR, timeout=10)
    elapsed = time.monotonic() - started
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.HEARTBEAT_TIMEOUT
    assert 3.0 - 0.1 <= elapsed <= 3.0 + 1.0 + 0.3


def test_heartbeats_keep_connection_open(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.connect(users["ann"][1])
    for _ in range(5):
        time.sleep(1.0)
        client.send_bytes(b"\x00")
        assert client.receive() is None
    client.send(pb.Send(to=users["bob"][0], client_id=1, body=b"alive"))
    assert client.expect(FrameType.SEND_ACK).client_id == 1  # type: ignore[attr-defined]


def test_negotiated_heartbeat_interval_is_clamped(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    client = RawClient(raw_server.tcp_address)
    client.connect(users["ann"][1])
    client.send(pb.Heartbeat(interval=100_000))
    reply = client.expect(FrameType.HEARTBEAT_INTERVAL)
    assert isinstance(reply, pb.Heartbeat)
    assert reply.interval == 600


def test_slow_consumer_is_disconnected(
    raw_server: ServerProcess, users: dict[str, tuple[int, str]]
) -> None:
    lazy = RawClient(raw_server.tcp_address, rcvbuf=4096)
    lazy.connect(users["bob"][1])
    sender = RawClient(raw_server.tcp_address)
    sender.connect(users["ann"][1])
    body = b"y" * 3000
    # 3,000 messages of 3 KB: far above the 64 KiB outbound limit plus the
    # kernel's socket buffers, and a bounded loop.
    for client_id in range(1, 3001):
        sender.send(pb.Send(to=users["bob"][0], client_id=client_id, body=body))
        if client_id % 100 == 0:
            sender.drain()
            if "slow consumer" in raw_server.log():
                break
    deadline = time.monotonic() + 10
    while "slow consumer" not in raw_server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "slow consumer" in raw_server.log()
    lazy.close()
    assert_others_unaffected(raw_server, users["ann"][1], users["bob"][0])
