"""Sans-IO connection: bytes in, events out; frames in, bytes out.

The same class serves both ends. It owns the frame decoder and the connection
state machine, and never touches a socket: the gateway and the SDK feed it the
bytes they read and write the bytes it returns.

The state machine is the table ``TRANSITIONS``: for each role and state, the
frame types that may arrive and the state each one leads to. A frame type not
listed for the current state is a protocol error (docs/protocol.md, "States").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import Message as ProtobufMessage

from switchboard.errors import ErrorCode, ProtocolError
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType, decode_payload, encode
from switchboard.protocol.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HEARTBEAT,
    FrameDecoder,
)

__all__ = [
    "TRANSITIONS",
    "Connection",
    "FrameReceived",
    "HeartbeatReceived",
    "Role",
    "State",
]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    AWAITING_CONNECT = "awaiting-connect"
    """Server: nothing received yet. Client: Connect not sent yet."""
    CONNECTING = "connecting"
    """Connect sent or received; Connected not yet sent or received."""
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class HeartbeatReceived:
    """The peer sent a heartbeat frame."""


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """The peer sent a frame other than a heartbeat."""

    type: FrameType
    message: ProtobufMessage
    payload: bytes
    """The frame's payload as received, for forwarding without re-encoding."""


Event = HeartbeatReceived | FrameReceived

_S = State
_F = FrameType

# (role, state) -> {frame type received -> next state}.
# Servers accept frames pipelined after Connect: the gateway holds them until
# authentication ends. A heartbeat is accepted in every state but CLOSED.
TRANSITIONS: Final[dict[tuple[Role, State], dict[FrameType, State]]] = {
    (Role.SERVER, _S.AWAITING_CONNECT): {
        _F.HEARTBEAT: _S.AWAITING_CONNECT,
        _F.CONNECT: _S.CONNECTING,
    },
    (Role.SERVER, _S.CONNECTING): {
        _F.HEARTBEAT: _S.CONNECTING,
        _F.SEND: _S.CONNECTING,
        _F.SYNC: _S.CONNECTING,
        _F.CURSOR: _S.CONNECTING,
        _F.HEARTBEAT_INTERVAL: _S.CONNECTING,
        _F.CONVERSATIONS: _S.CONNECTING,
        _F.CHANGE: _S.CONNECTING,
        _F.TYPING: _S.CONNECTING,
        _F.PRESENCE_SUBSCRIBE: _S.CONNECTING,
        _F.TIMELINE_SYNC: _S.CONNECTING,
    },
    (Role.SERVER, _S.OPEN): {
        _F.HEARTBEAT: _S.OPEN,
        _F.SEND: _S.OPEN,
        _F.SYNC: _S.OPEN,
        _F.CURSOR: _S.OPEN,
        _F.HEARTBEAT_INTERVAL: _S.OPEN,
        _F.CONVERSATIONS: _S.OPEN,
        _F.CHANGE: _S.OPEN,
        _F.TYPING: _S.OPEN,
        _F.PRESENCE_SUBSCRIBE: _S.OPEN,
        _F.TIMELINE_SYNC: _S.OPEN,
    },
    # A client that has not sent Connect can still be told why it is closed.
    (Role.CLIENT, _S.AWAITING_CONNECT): {
        _F.HEARTBEAT: _S.AWAITING_CONNECT,
        _F.ERROR: _S.AWAITING_CONNECT,
        _F.RECONNECT: _S.AWAITING_CONNECT,
    },
    (Role.CLIENT, _S.CONNECTING): {
        _F.HEARTBEAT: _S.CONNECTING,
        _F.CONNECTED: _S.OPEN,
        _F.ERROR: _S.CONNECTING,
        _F.RECONNECT: _S.CONNECTING,
    },
    (Role.CLIENT, _S.OPEN): {
        _F.HEARTBEAT: _S.OPEN,
        _F.SEND_ACK: _S.OPEN,
        _F.MESSAGE: _S.OPEN,
        _F.SYNC_RESPONSE: _S.OPEN,
        _F.ERROR: _S.OPEN,
        _F.RECONNECT: _S.OPEN,
        _F.HEARTBEAT_INTERVAL: _S.OPEN,
        _F.CONVERSATION_LIST: _S.OPEN,
        _F.CHANGE_ACK: _S.OPEN,
        _F.READ_RECEIPT: _S.OPEN,
        _F.TYPING: _S.OPEN,
        _F.PRESENCE: _S.OPEN,
        _F.TIMELINE_PAGE: _S.OPEN,
    },
}

_HEARTBEAT_EVENT: Final = HeartbeatReceived()


class Connection:
    """Protocol state of one connection, for either role.

    :meth:`receive_data` raises ProtocolError when the peer breaks the
    protocol; the connection is then CLOSED and :meth:`fail` returns the error
    frame to send before closing the transport.
    """

    __slots__ = ("_decoder", "role", "state")

    def __init__(
        self, role: Role, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    ) -> None:
        self.role = role
        self.state = State.AWAITING_CONNECT
        self._decoder = FrameDecoder(max_frame_size)

    def receive_data(self, data: bytes) -> list[Event]:
        """Decode ``data`` and return the events it completes, in order."""
        if self.state is State.CLOSED:
            return []
        try:
            frames = self._decoder.feed(data)
        except ProtocolError:
            self.state = State.CLOSED
            raise
        events: list[Event] = []
        for frame_type, payload in frames:
            events.append(self._receive_frame(frame_type, payload))
        return events

    def _receive_frame(self, frame_type: int, payload: bytes) -> Event:
        allowed = TRANSITIONS.get((self.role, self.state), {})
        if frame_type == FrameType.HEARTBEAT and frame_type in allowed:
            return _HEARTBEAT_EVENT
        message = self._decode(frame_type, payload)
        next_state = allowed.get(FrameType(frame_type))
        if next_state is None:
            previous, self.state = self.state, State.CLOSED
            raise _unexpected(FrameType(frame_type), previous)
        self.state = next_state
        return FrameReceived(FrameType(frame_type), message, payload)

    def _decode(self, frame_type: int, payload: bytes) -> ProtobufMessage:
        try:
            return decode_payload(frame_type, payload)
        except ProtocolError:
            self.state = State.CLOSED
            raise

    def send(self, message: ProtobufMessage) -> bytes:
        """Return the bytes of a frame carrying ``message`` and track the state.

        A client moves to CONNECTING when it sends Connect; a server moves to
        OPEN when it sends Connected, and to CLOSED when it sends a fatal
        Error or a Reconnect.
        """
        if isinstance(message, pb.Connect):
            self.state = State.CONNECTING
        elif isinstance(message, pb.Connected):
            self.state = State.OPEN
        elif self.role is Role.SERVER and _ends_connection(message):
            self.state = State.CLOSED
        return encode(message)

    def fail(self, error: ProtocolError) -> bytes:
        """Close the connection and return the fatal Error frame to send."""
        self.state = State.CLOSED
        return encode(pb.Error(code=error.code, reason=error.reason, fatal=True))

    @staticmethod
    def heartbeat() -> bytes:
        """Return the bytes of one heartbeat frame."""
        return HEARTBEAT

    @property
    def buffered(self) -> int:
        """Received bytes not yet part of a complete frame."""
        return self._decoder.buffered


def _ends_connection(message: ProtobufMessage) -> bool:
    if isinstance(message, pb.Reconnect):
        return True
    return isinstance(message, pb.Error) and message.fatal


def _unexpected(frame_type: FrameType, state: State) -> ProtocolError:
    if state is State.AWAITING_CONNECT:
        return ProtocolError(
            f"{frame_type.name} frame received before Connect; send Connect first",
            ErrorCode.NOT_CONNECTED,
        )
    if frame_type is FrameType.CONNECT:
        return ProtocolError(
            "Connect received twice on one connection", ErrorCode.ALREADY_CONNECTED
        )
    return ProtocolError(f"unexpected {frame_type.name} frame in state {state.value}")
