"""Length-prefixed framing: split a byte stream into frames and back.

A frame on the wire is ``varint(N)`` followed by N bytes. N = 0 is a
heartbeat. Otherwise the first of the N bytes is the frame type and the rest is
its protobuf payload (docs/protocol.md, "Framing"). The varint is the protobuf
base-128 varint, least significant group first, at most 4 bytes long, so N is at
most 2**28 - 1; the configured maximum frame size is usually far lower.
"""

from __future__ import annotations

from typing import Final

from switchboard.errors import FrameTooLarge, MalformedFrame

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEARTBEAT",
    "MAX_VARINT_BYTES",
    "FrameDecoder",
    "decode_varint",
    "encode_frame",
    "encode_varint",
]

MAX_VARINT_BYTES: Final = 4
"""Longest length prefix accepted; it caps N at 2**28 - 1 bytes."""

DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024
"""Default limit on N, the bytes after the length prefix."""

HEARTBEAT: Final = b"\x00"
"""A whole heartbeat frame: length zero."""


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as a base-128 varint."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes | bytearray, pos: int = 0) -> tuple[int, int] | None:
    """Decode a length prefix at ``pos``.

    Returns ``(value, next_pos)``, or None when the prefix is not complete yet.
    Raises MalformedFrame for a prefix longer than MAX_VARINT_BYTES or one that
    is not minimally encoded (a last byte of zero after a continuation byte).
    """
    value = 0
    shift = 0
    end = len(data)
    for i in range(pos, min(end, pos + MAX_VARINT_BYTES)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i > pos:
                raise MalformedFrame("length prefix is not minimally encoded")
            return value, i + 1
        shift += 7
    if end - pos >= MAX_VARINT_BYTES:
        raise MalformedFrame(
            f"length prefix longer than {MAX_VARINT_BYTES} bytes; the stream is"
            " out of step or not a Switchboard connection"
        )
    return None


def encode_frame(frame_type: int, payload: bytes) -> bytes:
    """Prefix ``frame_type`` and ``payload`` with their length."""
    size = len(payload) + 1
    if size < 0x80:
        return bytes((size, frame_type)) + payload
    return encode_varint(size) + bytes((frame_type,)) + payload


class FrameDecoder:
    """Incremental decoder that survives any split or coalescing of the stream.

    Feed bytes with :meth:`feed`; it returns each complete frame as
    ``(frame_type, payload)``, with ``frame_type`` 0 for a heartbeat. A length
    above ``max_frame_size`` raises FrameTooLarge as soon as the prefix shows
    it, before any of the body is buffered.
    """

    __slots__ = ("_buffer", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        # Bytes of an incomplete frame, or None: most reads end on a frame
        # boundary, and an idle connection then keeps no buffer.
        self._buffer: bytearray | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return 0 if self._buffer is None else len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes and return the frames they complete, in order."""
        buffer: bytes | bytearray
        if self._buffer is None:
            buffer = data
        else:
            self._buffer += data
            buffer = self._buffer
        frames: list[tuple[int, bytes]] = []
        pos = 0
        end = len(buffer)
        try:
            while pos < end:
                # Fast path: a one-byte length prefix.
                size = buffer[pos]
                if size < 0x80:
                    start = pos + 1
                else:
                    decoded = decode_varint(buffer, pos)
                    if decoded is None:
                        self._check_partial_prefix(buffer, pos)
                        break
                    size, start = decoded
                if size > self.max_frame_size:
                    raise FrameTooLarge(
                        f"frame of {size} bytes exceeds the limit of"
                        f" {self.max_frame_size} bytes"
                    )
                if size == 0:
                    frames.append((0, b""))
                    pos = start
                    continue
                if end - start < size:
                    break
                # Type 0 would be returned like a heartbeat, so reject it here.
                if buffer[start] == 0:
                    raise MalformedFrame(
                        "frame type 0 is not defined; a heartbeat is a frame"
                        " of length 0"
                    )
                frames.append((buffer[start], bytes(buffer[start + 1 : start + size])))
                pos = start + size
        finally:
            # On an error too, so that the bytes from the bad frame on stay
            # buffered, as they arrived.
            self._keep_rest(buffer, pos)
        return frames

    def _keep_rest(self, buffer: bytes | bytearray, pos: int) -> None:
        if pos >= len(buffer):
            self._buffer = None
        elif self._buffer is None:
            self._buffer = bytearray(buffer[pos:])
        else:
            del self._buffer[:pos]

    def _check_partial_prefix(self, buffer: bytes | bytearray, pos: int) -> None:
        # A minimally encoded prefix with k continuation bytes is at least
        # 2**(7k), so a hopeless length is rejected before the prefix completes.
        lower_bound = 1 << (7 * (len(buffer) - pos))
        if lower_bound > self.max_frame_size:
            raise FrameTooLarge(
                f"frame of at least {lower_bound} bytes exceeds the"
                f" limit of {self.max_frame_size} bytes"
            )
