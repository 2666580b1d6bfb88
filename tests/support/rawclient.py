"""A blocking socket client that speaks raw frames, for protocol-level tests."""

from __future__ import annotations

import socket
import time

import httpx
from google.protobuf.message import Message as ProtobufMessage

from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, FrameReceived, Role
from switchboard.protocol.frames import FrameType

__all__ = [
    "RawClient",
    "assert_nothing_pending",
    "close_all",
    "create_user",
    "expect_change_ack",
    "expect_error",
    "expect_message",
]

_open: list[RawClient] = []


def close_all() -> None:
    """Close every RawClient still open; for test teardown."""
    while _open:
        _open.pop().close()


def create_user(
    base_url: str, name: str, device: str = "dev1", admin_key: bytes | None = None
) -> tuple[int, str]:
    """Create an account and log it in; return (user id, token).

    ``admin_key`` is the server's admin key, needed for a name listed in
    SWITCHBOARD_ADMINS.
    """
    password = "password-" + name
    headers = {} if admin_key is None else {"X-Admin-Key": admin_key.hex()}
    response = httpx.post(
        base_url + "/v1/accounts",
        json={"name": name, "password": password},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    response = httpx.post(
        base_url + "/v1/sessions",
        json={"name": name, "password": password, "device": device, "platform": "cli"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["user_id"], body["token"]


class RawClient:
    """Frames over a plain socket, with a client-role protocol state machine."""

    def __init__(
        self, address: tuple[str, int], timeout: float = 5.0, rcvbuf: int = 0
    ) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.timeout = timeout
        self.sock.settimeout(timeout)
        _open.append(self)
        self.sock.connect(address)
        self.protocol = Connection(Role.CLIENT)
        self.pending: list[FrameReceived | None] = []
        self.heartbeats = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        """Payload bytes written to and read from the socket."""

    def send_bytes(self, data: bytes) -> None:
        # receive() shortens the timeout; writes get the full one back.
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)
        self.bytes_sent += len(data)

    def send(self, message: ProtobufMessage) -> None:
        self.send_bytes(self.protocol.send(message))

    def connect(
        self,
        token: str,
        device: str = "dev1",
        last_seq: int = 0,
        platform: int = pb.PLATFORM_CLI,
    ) -> pb.Connected:
        self.send(
            pb.Connect(
                version=1,
                token=token,
                device=device,
                last_seq=last_seq,
                platform=platform,
            )
        )
        frame = self.expect(FrameType.CONNECTED)
        assert isinstance(frame, pb.Connected)
        return frame

    def receive(self, timeout: float = 5.0) -> FrameReceived | None:
        """Return the next frame; None for a heartbeat. Raises EOFError on close."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame within the timeout")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.bytes_received += len(data)
            for event in self.protocol.receive_data(data):
                self.pending.append(event if isinstance(event, FrameReceived) else None)
        return self.pending.pop(0)

    def expect(
        self,
        frame_type: FrameType,
        timeout: float = 5.0,
        skip: tuple[FrameType, ...] = (),
    ) -> ProtobufMessage:
        """Return the next frame of ``frame_type``, passing over heartbeats.

        Frames of the types in ``skip`` are passed over too; any other type
        fails the test.
        """
        while True:
            event = self.receive(timeout)
            if event is None:
                self.heartbeats += 1
                continue
            if event.type in skip:
                continue
            assert event.type is frame_type, f"expected {frame_type.name}, got {event}"
            return event.message

    def expect_closed(self, timeout: float = 5.0) -> None:
        """Read until the server closes the connection; fail on a timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("server did not close the connection")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not data:
                return

    def drain(self) -> int:
        """Read whatever frames have arrived, without waiting; return how many."""
        count = 0
        while True:
            try:
                self.receive(timeout=0.001)
            except TimeoutError:
                return count
            count += 1

    def close(self) -> None:
        self.sock.close()


def expect_message(client: RawClient) -> pb.Message:
    """Return the next frame, which must be a Message."""
    message = client.expect(FrameType.MESSAGE)
    assert isinstance(message, pb.Message)
    return message


def expect_change_ack(client: RawClient) -> pb.ChangeAck:
    """Return the next frame, which must be a ChangeAck."""
    ack = client.expect(FrameType.CHANGE_ACK)
    assert isinstance(ack, pb.ChangeAck)
    return ack


def expect_error(client: RawClient) -> pb.Error:
    """Return the next frame, which must be an Error."""
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    return error


def assert_nothing_pending(client: RawClient) -> None:
    """Send a heartbeat and check that its echo is the next frame."""
    client.send_bytes(b"\x00")
    assert client.receive() is None
