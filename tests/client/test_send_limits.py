"""Messages above the server's size limits fail at once instead of looping.

A Send frame above the server's frame limit makes the server close the
connection. The client must reject such a message, not resend it after every
reconnect.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.client import SendRejected
from switchboard.client.limits import (
    SendLimits,
    frame_size,
    pack_frames,
    reported_frame_limit,
)
from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType, encode
from tests.client.test_session import (
    PEER,
    FakeGateway,
    connected,
    gateway,
    make_client,
    open_session,
)

__all__ = ["gateway"]


@given(
    frames=st.lists(st.binary(min_size=1, max_size=300), max_size=30),
    limit=st.integers(min_value=1, max_value=1000),
)
def test_packed_writes_keep_order_and_fit_the_limit(
    frames: list[bytes], limit: int
) -> None:
    writes = pack_frames(frames, limit)
    assert b"".join(writes) == b"".join(frames)
    # Each write is whole frames: over the limit only when it is one frame.
    assert all(len(w) <= limit or w in frames for w in writes)
    assert len(writes) <= len(frames)


def test_frames_are_packed_greedily() -> None:
    frames = [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 200, b"e"]
    assert pack_frames(frames, 100) == [
        b"a" * 40 + b"b" * 40,
        b"c" * 40,
        b"d" * 200,
        b"e",
    ]


def test_frame_size_counts_type_byte_and_payload() -> None:
    send = pb.Send(to=2, client_id=7, body=b"hello")
    assert frame_size(send) == len(encode(send)) - 1


def test_frame_size_assumes_largest_client_id() -> None:
    unnumbered = pb.Send(to=2, body=b"hello")
    numbered = pb.Send(to=2, client_id=2**63 - 1, body=b"hello")
    assert frame_size(unnumbered) == frame_size(numbered)
    assert unnumbered.client_id == 0


def test_limits_reject_body_and_frame() -> None:
    limits = SendLimits(max_frame_size=100, max_body_size=50)
    limits.check(pb.Send(to=2, body=b"x" * 50))
    with pytest.raises(SendRejected) as body_error:
        limits.check(pb.Send(to=2, body=b"x" * 51))
    assert body_error.value.local
    assert body_error.value.code is ErrorCode.INVALID_MESSAGE
    assert "51 bytes" in body_error.value.reason
    assert "at most 50" in body_error.value.reason

    limits.max_body_size = 0
    with pytest.raises(SendRejected) as frame_error:
        limits.check(pb.Send(to=2, body=b"x" * 90))
    assert "frames of at most 100" in frame_error.value.reason


@pytest.mark.parametrize(
    ("reason", "limit"),
    [
        ("frame of 70000 bytes exceeds the limit of 65536 bytes", 65536),
        ("frame of at least 2097152 bytes exceeds the limit of 4096 bytes", 4096),
        ("too big", None),
    ],
)
def test_reported_frame_limit(reason: str, limit: int | None) -> None:
    assert reported_frame_limit(reason) == limit


async def test_oversized_message_fails_before_sending(gateway: FakeGateway) -> None:
    client = make_client(gateway, limits={"max_frame_size": 1000})
    connection, _ = await open_session(gateway, client, connected(0))
    async with asyncio.timeout(1):
        with pytest.raises(SendRejected) as caught:
            await client.send(PEER, "x" * 1000)
    assert caught.value.local
    assert caught.value.client_id == 0
    await connection.expect_none(FrameType.SEND, within=0.3)
    # The next message gets the first client id: the rejected one used none.
    sending = asyncio.create_task(client.send(PEER, "short"))
    send = await connection.expect(FrameType.SEND)
    assert isinstance(send, pb.Send)
    assert send.client_id == 1
    connection.send(pb.SendAck(client_id=1, seq=1, id=1, sent_at=1))
    await sending
    await client.close()


async def test_body_limit_comes_from_discovery(gateway: FakeGateway) -> None:
    client = make_client(gateway, limits={"max_body_size": 10})
    connection, _ = await open_session(gateway, client, connected(0))
    with pytest.raises(SendRejected) as caught:
        await client.send(PEER, "eleven char")
    assert "at most 10" in caught.value.reason
    await connection.expect_none(FrameType.SEND, within=0.3)
    await client.close()


async def test_blank_text_fails_before_sending(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    for text in ("", "  \n"):
        with pytest.raises(SendRejected) as caught:
            await client.send(PEER, text)
        assert caught.value.local
    await connection.expect_none(FrameType.SEND, within=0.3)
    await client.close()


@pytest.mark.parametrize(
    "reason",
    ["frame of 30010 bytes exceeds the limit of 20000 bytes", "frame too large"],
)
async def test_frame_too_large_close_rejects_message(
    gateway: FakeGateway, reason: str
) -> None:
    # Discovery reports no limit, so the client assumes 64 KiB, but this
    # server accepts less and closes the connection on the large frame.
    client = make_client(gateway)
    first, _ = await open_session(gateway, client, connected(0))
    small = asyncio.create_task(client.send(PEER, "small"))
    large = asyncio.create_task(client.send(PEER, "x" * 30_000))
    await first.expect(FrameType.SEND)
    await first.expect(FrameType.SEND)
    first.send(pb.Error(code=ErrorCode.FRAME_TOO_LARGE, reason=reason, fatal=True))
    first.close()

    async with asyncio.timeout(5):
        with pytest.raises(SendRejected) as caught:
            await large
    assert caught.value.code is ErrorCode.INVALID_MESSAGE
    assert caught.value.client_id == 2
    # The reconnect resends only the small message, which then succeeds.
    second, _ = await gateway.accept()
    resent = await second.expect(FrameType.SEND)
    assert isinstance(resent, pb.Send)
    assert resent.body == b"small"
    second.send(connected(0, last_client_id=0))
    second.send(pb.SendAck(client_id=1, seq=1, id=5, sent_at=1))
    assert (await small).id == 5
    await second.expect_none(FrameType.SEND, within=0.3)
    # The limit learned from the close applies to later messages at once.
    with pytest.raises(SendRejected):
        await client.send(PEER, "y" * 30_000)
    await client.close()
