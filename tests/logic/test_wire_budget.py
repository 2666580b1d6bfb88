"""Bytes on the socket for a reconnect and a heartbeat, on a real server."""

from __future__ import annotations

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess

RECONNECT_BUDGET = 80
"""Most bytes, both ways, for a reconnect that missed nothing."""


def test_reconnect_with_nothing_missed_fits_budget(raw_server: ServerProcess) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob", device="phone")
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)
    sender.send(pb.Send(to=bob_id, client_id=1, body=b"hello"))
    sender.expect(FrameType.SEND_ACK)
    first = RawClient(raw_server.tcp_address)
    head = first.connect(bob, device="phone").head_seq
    first.close()

    # No device id: the token names it.
    again = RawClient(raw_server.tcp_address)
    connected = again.connect(bob, device="", last_seq=head)

    assert len(connected.sync.messages) == 0
    assert again.bytes_sent + again.bytes_received <= RECONNECT_BUDGET


def test_heartbeat_is_one_byte_each_way(raw_server: ServerProcess) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    client = RawClient(raw_server.tcp_address)
    client.connect(ann)
    sent, received = client.bytes_sent, client.bytes_received

    client.send_bytes(b"\x00")

    assert client.receive() is None
    assert client.bytes_sent - sent == 1
    assert client.bytes_received - received == 1


def test_connect_without_device_uses_the_tokens(raw_server: ServerProcess) -> None:
    _, ann = create_user(raw_server.base_url, "ann")
    bob_id, bob = create_user(raw_server.base_url, "bob", device="tablet")
    receiver = RawClient(raw_server.tcp_address)
    receiver.connect(bob, device="")
    sender = RawClient(raw_server.tcp_address)
    sender.connect(ann)

    sender.send(pb.Send(to=bob_id, client_id=1, body=b"hello"))

    assert receiver.expect(FrameType.MESSAGE).body == b"hello"
    replacing = RawClient(raw_server.tcp_address)
    replacing.connect(bob, device="tablet")
    assert receiver.expect(FrameType.ERROR).code == ErrorCode.SESSION_REPLACED
