"""Length-prefix framing: varints, stream splitting and the frame size limit."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.errors import ErrorCode, FrameTooLarge, MalformedFrame, ProtocolError
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, Role, State
from switchboard.protocol.frames import encode
from switchboard.protocol.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HEARTBEAT,
    MAX_VARINT_BYTES,
    FrameDecoder,
    decode_varint,
    encode_frame,
    encode_varint,
)

Frame = tuple[int, bytes]

# (value, encoded length): the largest and smallest value of each prefix length.
VARINT_BOUNDARIES = [
    (0, 1),
    (127, 1),
    (128, 2),
    (16383, 2),
    (16384, 3),
    (2097151, 3),
    (2097152, 4),
    (2**28 - 1, 4),
]

# Frame sizes N (type byte plus payload) on either side of a prefix length change,
# and the largest frame the default limit accepts.
BOUNDARY_SIZES = [127, 128, 16383, 16384, DEFAULT_MAX_FRAME_SIZE]


def encode_all(frames: list[Frame]) -> bytes:
    """Encode frames the way a peer writes them; type 0 is a heartbeat."""
    return b"".join(
        HEARTBEAT if frame_type == 0 else encode_frame(frame_type, payload)
        for frame_type, payload in frames
    )


def feed_chunks(decoder: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    frames: list[Frame] = []
    for chunk in chunks:
        frames += decoder.feed(chunk)
    return frames


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


# Varints.


@pytest.mark.parametrize(("value", "length"), VARINT_BOUNDARIES)
def test_varint_round_trip_at_boundaries(value: int, length: int) -> None:
    encoded = encode_varint(value)

    assert len(encoded) == length
    assert decode_varint(encoded) == (value, length)


@pytest.mark.parametrize(("value", "length"), VARINT_BOUNDARIES)
def test_varint_decodes_at_offset(value: int, length: int) -> None:
    data = b"\xaa\xbb" + encode_varint(value) + b"\xcc"

    assert decode_varint(data, 2) == (value, 2 + length)


@pytest.mark.parametrize(("value", "length"), VARINT_BOUNDARIES)
def test_varint_incomplete_prefix_returns_none(value: int, length: int) -> None:
    encoded = encode_varint(value)

    for cut in range(length):
        assert decode_varint(encoded[:cut]) is None


@given(st.integers(min_value=0, max_value=2**28 - 1))
def test_varint_round_trip_property(value: int) -> None:
    encoded = encode_varint(value)

    assert len(encoded) <= MAX_VARINT_BYTES
    assert decode_varint(encoded) == (value, len(encoded))


def test_varint_is_little_endian_base_128() -> None:
    assert encode_varint(300) == b"\xac\x02"
    assert encode_varint(65536) == b"\x80\x80\x04"


@pytest.mark.parametrize(
    "prefix",
    [b"\x80\x00", b"\xff\x00", b"\x80\x80\x00", b"\xff\xff\xff\x00"],
    ids=["zero-2", "max-group-2", "zero-3", "zero-4"],
)
def test_varint_non_minimal_rejected(prefix: bytes) -> None:
    with pytest.raises(MalformedFrame, match="not minimally encoded"):
        decode_varint(prefix)


@pytest.mark.parametrize(
    "prefix",
    [b"\x80\x00", b"\xff\x00", b"\x80\x80\x00", b"\xff\xff\xff\x00"],
    ids=["zero-2", "max-group-2", "zero-3", "zero-4"],
)
def test_decoder_rejects_non_minimal_prefix(prefix: bytes) -> None:
    decoder = FrameDecoder(max_frame_size=2**28)

    with pytest.raises(MalformedFrame, match="not minimally encoded"):
        decoder.feed(prefix + b"\x01" * 200)


def test_varint_five_byte_prefix_rejected() -> None:
    with pytest.raises(MalformedFrame, match="longer than 4 bytes"):
        decode_varint(b"\x80\x80\x80\x80\x01")


def test_decoder_rejects_five_byte_prefix() -> None:
    # The limit is above every 4-byte length, so only the prefix length fails.
    decoder = FrameDecoder(max_frame_size=2**30)

    with pytest.raises(MalformedFrame, match="longer than 4 bytes"):
        decoder.feed(b"\x80\x80\x80\x80\x01")


def test_five_byte_prefix_byte_by_byte() -> None:
    decoder = FrameDecoder(max_frame_size=2**30)
    prefix = b"\x80\x80\x80\x80\x01"

    for byte in prefix[:3]:
        assert decoder.feed(bytes([byte])) == []
    with pytest.raises(MalformedFrame, match="longer than 4 bytes"):
        decoder.feed(prefix[3:4])


# Frames.


def test_encode_frame_layout() -> None:
    assert encode_frame(3, b"ab") == b"\x03\x03ab"
    assert encode_frame(5, b"x" * 127) == b"\x80\x01\x05" + b"x" * 127


def test_heartbeat_is_length_zero() -> None:
    decoder = FrameDecoder()

    assert HEARTBEAT == b"\x00"
    assert decoder.feed(HEARTBEAT * 3) == [(0, b"")] * 3
    assert decoder.buffered == 0


def test_frame_type_zero_with_payload_rejected() -> None:
    decoder = FrameDecoder()

    with pytest.raises(MalformedFrame, match="frame type 0"):
        decoder.feed(b"\x02\x00\x08")


def test_decoder_keeps_partial_frame() -> None:
    decoder = FrameDecoder()
    data = encode_frame(3, b"hello")

    assert decoder.feed(data[:4]) == []
    assert decoder.buffered == 4
    assert decoder.feed(data[4:] + HEARTBEAT) == [(3, b"hello"), (0, b"")]
    assert decoder.buffered == 0


# The frame size limit.


def test_frame_at_max_size_accepted() -> None:
    decoder = FrameDecoder()
    payload = b"\x07" * (DEFAULT_MAX_FRAME_SIZE - 1)

    assert decoder.feed(encode_frame(5, payload)) == [(5, payload)]
    assert decoder.buffered == 0


def test_frame_one_byte_over_max_rejected() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(5, b"\x07" * DEFAULT_MAX_FRAME_SIZE)
    prefix = encode_varint(DEFAULT_MAX_FRAME_SIZE + 1)

    # The prefix alone is enough: no byte of the body is needed.
    with pytest.raises(FrameTooLarge, match="65537 bytes"):
        decoder.feed(frame[: len(prefix)])
    assert decoder.buffered == len(prefix)


def test_custom_max_frame_size() -> None:
    decoder = FrameDecoder(max_frame_size=10)

    assert decoder.feed(encode_frame(3, b"123456789")) == [(3, b"123456789")]
    with pytest.raises(FrameTooLarge, match="11 bytes exceeds the limit of 10"):
        decoder.feed(encode_frame(3, b"1234567890"))


def test_small_limit_rejects_partial_prefix() -> None:
    # Any minimal 2-byte prefix is at least 128, above a limit of 100.
    decoder = FrameDecoder(max_frame_size=100)

    with pytest.raises(FrameTooLarge, match="at least 128 bytes"):
        decoder.feed(b"\x80")
    assert decoder.buffered == 1


HUGE_PREFIX = encode_varint(200 * 1024 * 1024)


def test_huge_prefix_rejected_in_one_write() -> None:
    decoder = FrameDecoder()

    assert len(HUGE_PREFIX) == 4
    with pytest.raises(FrameTooLarge):
        decoder.feed(HUGE_PREFIX)
    assert decoder.buffered <= MAX_VARINT_BYTES


def test_huge_prefix_rejected_byte_by_byte() -> None:
    decoder = FrameDecoder()
    fed = 0

    with pytest.raises(FrameTooLarge, match="at least 2097152 bytes"):
        for byte in HUGE_PREFIX:
            fed += 1
            decoder.feed(bytes([byte]))
            assert decoder.buffered <= MAX_VARINT_BYTES
    # Three continuation bytes already mean at least 2**21 bytes.
    assert fed == 3
    assert decoder.buffered == 3


def test_partial_prefix_below_limit_waits() -> None:
    decoder = FrameDecoder()

    # Two continuation bytes mean at least 2**14 bytes, which may still fit.
    assert decoder.feed(b"\x80\x80") == []
    assert decoder.buffered == 2


def test_huge_prefix_closes_connection() -> None:
    connection = Connection(Role.SERVER)

    with pytest.raises(FrameTooLarge) as caught:
        connection.receive_data(HUGE_PREFIX)
    assert caught.value.code is ErrorCode.FRAME_TOO_LARGE
    assert connection.state is State.CLOSED
    assert connection.buffered <= MAX_VARINT_BYTES
    # A closed connection ignores the body that follows.
    assert connection.receive_data(b"\x01" * 4096) == []
    assert connection.buffered <= MAX_VARINT_BYTES


# Any split of the stream decodes to the same frames.

small_frames = st.tuples(st.integers(0, 255), st.binary(max_size=300))
boundary_frames = st.tuples(
    st.integers(1, 255), st.sampled_from(BOUNDARY_SIZES), st.integers(0, 255)
).map(lambda drawn: (drawn[0], bytes([drawn[2]]) * (drawn[1] - 1)))
frame_lists = st.lists(
    st.one_of(small_frames, boundary_frames).map(
        # A heartbeat has no payload, so type 0 stands for one whatever was drawn.
        lambda frame: (0, b"") if frame[0] == 0 else frame
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(frame_lists, st.data())
def test_any_split_decodes_same_frames(
    frames: list[Frame], data: st.DataObject
) -> None:
    stream = encode_all(frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    decoder = FrameDecoder()

    assert feed_chunks(decoder, split_at(stream, cuts)) == frames
    assert decoder.buffered == 0


@settings(max_examples=30, deadline=None)
@given(frame_lists)
def test_byte_by_byte_decodes_same_frames(frames: list[Frame]) -> None:
    stream = encode_all(frames)
    decoder = FrameDecoder()

    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert feed_chunks(decoder, chunks) == frames
    assert decoder.buffered == 0


@settings(deadline=None)
@given(frame_lists)
def test_one_write_decodes_same_frames(frames: list[Frame]) -> None:
    decoder = FrameDecoder()

    assert decoder.feed(encode_all(frames)) == frames
    assert decoder.buffered == 0


# Random input raises nothing but protocol errors.


@settings(max_examples=500)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_decoder_fuzz_raises_protocol_errors(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()

    with contextlib.suppress(ProtocolError):
        feed_chunks(decoder, chunks)


random_frame_bytes = st.tuples(st.integers(0, 14), st.binary(max_size=40)).map(
    lambda drawn: encode_frame(drawn[0], drawn[1])
)
random_streams = st.lists(
    st.one_of(st.binary(max_size=32), random_frame_bytes, st.just(HEARTBEAT)),
    max_size=8,
)


def connection_in(role: Role, state: State) -> Connection:
    """Drive a new connection to ``state`` with valid frames."""
    connection = Connection(role)
    if state is State.AWAITING_CONNECT:
        return connection
    if role is Role.SERVER:
        connection.receive_data(encode(pb.Connect(version=1, token="t")))
        if state is State.OPEN:
            connection.send(pb.Connected(user_id=1))
    else:
        connection.send(pb.Connect(version=1, token="t"))
        if state is State.OPEN:
            connection.receive_data(encode(pb.Connected(user_id=1)))
    return connection


@settings(max_examples=500)
@given(
    st.sampled_from(list(Role)),
    st.sampled_from([State.AWAITING_CONNECT, State.CONNECTING, State.OPEN]),
    random_streams,
)
def test_connection_fuzz_raises_protocol_errors(
    role: Role, state: State, chunks: list[bytes]
) -> None:
    connection = connection_in(role, state)
    assert connection.state is state

    try:
        for chunk in chunks:
            connection.receive_data(chunk)
    except ProtocolError:
        assert connection.state is State.CLOSED
