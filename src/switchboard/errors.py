"""Exception tree and the numeric error codes sent on the wire.

::

    SwitchboardError
    ├── ProtocolError          the peer broke the wire protocol (carries a code)
    │   ├── FrameTooLarge      a declared frame length is above the limit
    │   └── MalformedFrame     bytes that do not decode as a frame
    ├── RequestError           a well-formed request the service rejects
    │                          (bad token, unknown recipient, ...; carries a code)
    └── ConnectionClosedError  the connection is gone
        ├── ConnectionClosed   closed by this side, or cleanly by the peer
        └── ConnectionBroken   lost without a clean close

Each code below is the ``Error.code`` value of an error frame and is listed in
docs/protocol.md.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConnectionBroken",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ErrorCode",
    "FrameTooLarge",
    "MalformedFrame",
    "ProtocolError",
    "RequestError",
    "SwitchboardError",
]


class ErrorCode(enum.IntEnum):
    """Numeric error codes carried by error frames."""

    PROTOCOL_ERROR = 1
    FRAME_TOO_LARGE = 2
    UNSUPPORTED_VERSION = 3
    NOT_CONNECTED = 4
    ALREADY_CONNECTED = 5
    UNAUTHORIZED = 10
    TOKEN_REVOKED = 11
    AUTH_TIMEOUT = 12
    SESSION_REPLACED = 13
    NAME_TAKEN = 14
    UNKNOWN_RECIPIENT = 20
    INVALID_MESSAGE = 21
    CURSOR_AHEAD = 22
    INVALID_ARGUMENT = 23
    NOT_A_MEMBER = 24
    GROUP_NOT_FOUND = 25
    GROUP_FULL = 26
    FORBIDDEN = 27
    HEARTBEAT_TIMEOUT = 30
    SLOW_CONSUMER = 31
    RATE_LIMITED = 40
    TOO_MANY_CONNECTIONS = 41
    INTERNAL_ERROR = 50
    SHUTTING_DOWN = 51
    MESSAGE_NOT_FOUND = 60
    NOT_SENDER = 61
    WINDOW_PASSED = 62
    MESSAGE_RECALLED = 63


class SwitchboardError(Exception):
    """Root of every exception Switchboard raises on purpose."""


class ProtocolError(SwitchboardError):
    """The peer sent bytes or frames that break the protocol."""

    code: ErrorCode = ErrorCode.PROTOCOL_ERROR

    def __init__(self, reason: str, code: ErrorCode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class FrameTooLarge(ProtocolError):
    """A frame declares a length above the configured maximum."""

    code = ErrorCode.FRAME_TOO_LARGE


class MalformedFrame(ProtocolError):
    """A frame's length prefix, type byte or payload does not decode."""


class RequestError(SwitchboardError):
    """A well-formed request that the service rejects, with the wire code."""

    def __init__(
        self, code: ErrorCode, reason: str, *, retry_after_ms: int = 0
    ) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason
        self.retry_after_ms = retry_after_ms


class ConnectionClosedError(SwitchboardError):
    """The connection is no longer usable."""


class ConnectionClosed(ConnectionClosedError):
    """The connection was closed by this side or cleanly by the peer."""


class ConnectionBroken(ConnectionClosedError):
    """The connection was lost without a clean close (reset, timeout, EOF)."""
