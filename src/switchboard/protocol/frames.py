"""Frame types and the payload message that each one carries."""

from __future__ import annotations

import enum
from typing import Final

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from switchboard.errors import MalformedFrame
from switchboard.protocol import pb
from switchboard.protocol.framing import encode_frame

__all__ = ["PROTOCOL_VERSION", "FrameType", "decode_payload", "encode"]

PROTOCOL_VERSION: Final = 1


class FrameType(enum.IntEnum):
    """The type byte after a frame's length prefix (0 is the heartbeat)."""

    HEARTBEAT = 0
    CONNECT = 1
    CONNECTED = 2
    SEND = 3
    SEND_ACK = 4
    MESSAGE = 5
    SYNC = 6
    SYNC_RESPONSE = 7
    CURSOR = 8
    ERROR = 9
    RECONNECT = 10
    HEARTBEAT_INTERVAL = 11
    CONVERSATIONS = 12
    CONVERSATION_LIST = 13
    CHANGE = 14
    CHANGE_ACK = 15
    READ_RECEIPT = 16
    TIMELINE_SYNC = 17
    TIMELINE_PAGE = 18
    TYPING = 20
    PRESENCE_SUBSCRIBE = 21
    PRESENCE = 22


PAYLOAD_TYPES: Final[dict[int, type[ProtobufMessage]]] = {
    FrameType.CONNECT: pb.Connect,
    FrameType.CONNECTED: pb.Connected,
    FrameType.SEND: pb.Send,
    FrameType.SEND_ACK: pb.SendAck,
    FrameType.MESSAGE: pb.Message,
    FrameType.SYNC: pb.SyncRequest,
    FrameType.SYNC_RESPONSE: pb.SyncResponse,
    FrameType.CURSOR: pb.Cursor,
    FrameType.ERROR: pb.Error,
    FrameType.RECONNECT: pb.Reconnect,
    FrameType.HEARTBEAT_INTERVAL: pb.Heartbeat,
    FrameType.CONVERSATIONS: pb.ConversationsRequest,
    FrameType.CONVERSATION_LIST: pb.ConversationList,
    FrameType.CHANGE: pb.ChangeRequest,
    FrameType.CHANGE_ACK: pb.ChangeAck,
    FrameType.READ_RECEIPT: pb.ReadReceipt,
    FrameType.TYPING: pb.Typing,
    FrameType.TIMELINE_SYNC: pb.TimelineSync,
    FrameType.TIMELINE_PAGE: pb.TimelinePage,
    FrameType.PRESENCE_SUBSCRIBE: pb.PresenceSubscribe,
    FrameType.PRESENCE: pb.PresenceUpdate,
}

_FRAME_TYPE_OF: Final[dict[type[ProtobufMessage], FrameType]] = {
    cls: FrameType(t) for t, cls in PAYLOAD_TYPES.items()
}


def decode_payload(frame_type: int, payload: bytes) -> ProtobufMessage:
    """Parse ``payload`` as the message for ``frame_type``.

    Raises MalformedFrame for an unknown type or bytes that do not parse.
    """
    cls = PAYLOAD_TYPES.get(frame_type)
    if cls is None:
        raise MalformedFrame(f"unknown frame type {frame_type}")
    try:
        return cls.FromString(payload)
    except DecodeError as exc:
        raise MalformedFrame(
            f"invalid {cls.__name__} payload in frame type {frame_type}: {exc}"
        ) from exc


def encode(message: ProtobufMessage) -> bytes:
    """Serialize ``message`` as a whole frame, length prefix included."""
    return encode_frame(_FRAME_TYPE_OF[type(message)], message.SerializeToString())
