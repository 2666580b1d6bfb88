"""The server's size limits, checked before a message is queued.

A Send frame above the server's frame size limit makes the server close the
connection (``FRAME_TOO_LARGE``). A client that resent the message after
every reconnect would loop forever, so the SDK rejects such a message before
it is queued. ``GET /v1/gateways`` reports the limits; until it has, the
protocol's default frame limit applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchboard.client.errors import SendRejected
from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.framing import DEFAULT_MAX_FRAME_SIZE

__all__ = ["SendLimits", "frame_size", "pack_frames", "reported_frame_limit"]

_MAX_CLIENT_ID = 2**63 - 1
_LIMIT_IN_REASON = re.compile(r"limit of (\d+) bytes")


def frame_size(send: pb.Send) -> int:
    """Return the frame length N of ``send``: its type byte and payload.

    A client id of 0 is counted as the largest one, so the size holds for
    whatever id the message gets.
    """
    if send.client_id:
        return 1 + send.ByteSize()
    measured = pb.Send()
    measured.CopyFrom(send)
    measured.client_id = _MAX_CLIENT_ID
    return 1 + measured.ByteSize()


def pack_frames(frames: list[bytes], limit: int) -> list[bytes]:
    """Join encoded ``frames``, in order, into writes of at most ``limit`` bytes.

    A WebSocket gateway takes messages of at most its frame limit plus a
    frame header. It would refuse a larger batch of queued messages whole,
    and again on every reconnect. A frame longer than ``limit`` is a write
    of its own.
    """
    writes: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for frame in frames:
        if batch and size + len(frame) > limit:
            writes.append(b"".join(batch))
            batch, size = [], 0
        batch.append(frame)
        size += len(frame)
    if batch:
        writes.append(b"".join(batch))
    return writes


def reported_frame_limit(reason: str) -> int | None:
    """Return the limit a FRAME_TOO_LARGE reason names, if it names one."""
    match = _LIMIT_IN_REASON.search(reason)
    return int(match[1]) if match else None


@dataclass(slots=True)
class SendLimits:
    """The limits in force, in bytes."""

    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    """Largest frame length N the server accepts."""
    max_body_size: int = 0
    """Largest message body the server accepts; 0 while unknown."""

    def check(self, send: pb.Send) -> None:
        """Raise SendRejected (INVALID_MESSAGE, client id 0) for a message
        whose body or frame is above a limit."""
        body_size = len(send.body)
        if self.max_body_size and body_size > self.max_body_size:
            raise _too_large(
                f"the message body is {body_size} bytes and the server accepts"
                f" at most {self.max_body_size}; shorten the text, or send a file"
            )
        size = frame_size(send)
        if size > self.max_frame_size:
            raise _too_large(
                f"the message needs a frame of {size} bytes and the server"
                f" accepts frames of at most {self.max_frame_size}; shorten the"
                " text, or send a file"
            )


def _too_large(reason: str) -> SendRejected:
    return SendRejected(ErrorCode.INVALID_MESSAGE, reason, 0, local=True)
