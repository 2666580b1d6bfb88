"""The sans-IO connection, driven through every entry of its transition table."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message as ProtobufMessage

from switchboard.errors import ErrorCode, MalformedFrame, ProtocolError
from switchboard.protocol import pb
from switchboard.protocol.connection import (
    TRANSITIONS,
    Connection,
    FrameReceived,
    HeartbeatReceived,
    Role,
    State,
)
from switchboard.protocol.frames import (
    PAYLOAD_TYPES,
    FrameType,
    decode_payload,
    encode,
)
from switchboard.protocol.framing import HEARTBEAT, FrameDecoder, encode_frame

LIVE_STATES = [State.AWAITING_CONNECT, State.CONNECTING, State.OPEN]

# One valid payload per frame type, with a non-default field so that the
# payload is not empty.
SAMPLE_MESSAGES: dict[FrameType, ProtobufMessage] = {
    FrameType.CONNECT: pb.Connect(version=1, token="tok", device="phone"),
    FrameType.CONNECTED: pb.Connected(user_id=1, heartbeat=30),
    FrameType.SEND: pb.Send(to=2, client_id=1, body=b"hi"),
    FrameType.SEND_ACK: pb.SendAck(client_id=1, seq=1),
    FrameType.MESSAGE: pb.Message(seq=1, id=1, body=b"hi"),
    FrameType.SYNC: pb.SyncRequest(after_seq=4),
    FrameType.SYNC_RESPONSE: pb.SyncResponse(after_seq=4, head_seq=4),
    FrameType.CURSOR: pb.Cursor(seq=3),
    FrameType.ERROR: pb.Error(code=ErrorCode.UNKNOWN_RECIPIENT, client_id=1),
    FrameType.RECONNECT: pb.Reconnect(delay=100),
    FrameType.HEARTBEAT_INTERVAL: pb.Heartbeat(interval=60),
    FrameType.CONVERSATIONS: pb.ConversationsRequest(limit=20),
    FrameType.CONVERSATION_LIST: pb.ConversationList(head_seq=3, total_unread=1),
    FrameType.CHANGE: pb.ChangeRequest(request_id=1, kind=pb.CHANGE_READ, peer=2),
    FrameType.CHANGE_ACK: pb.ChangeAck(request_id=1, seq=4),
    FrameType.READ_RECEIPT: pb.ReadReceipt(reader=2, message_id=9),
    FrameType.TIMELINE_SYNC: pb.TimelineSync(group=7, after_seq=2),
    FrameType.TIMELINE_PAGE: pb.TimelinePage(group=7, after_seq=2, head_seq=2),
    FrameType.TYPING: pb.Typing(to=2, active=True),
    FrameType.PRESENCE_SUBSCRIBE: pb.PresenceSubscribe(users=[2, 3]),
    FrameType.PRESENCE: pb.PresenceUpdate(users=[pb.UserPresence(user=2)]),
}


def frame_bytes(frame_type: FrameType) -> bytes:
    if frame_type is FrameType.HEARTBEAT:
        return HEARTBEAT
    return encode(SAMPLE_MESSAGES[frame_type])


def connection_in(role: Role, state: State) -> Connection:
    """Drive a new connection to ``state`` through the public API."""
    connection = Connection(role)
    if state is State.AWAITING_CONNECT:
        return connection
    if role is Role.SERVER:
        connection.receive_data(frame_bytes(FrameType.CONNECT))
        if state is State.OPEN:
            connection.send(SAMPLE_MESSAGES[FrameType.CONNECTED])
    else:
        connection.send(SAMPLE_MESSAGES[FrameType.CONNECT])
        if state is State.OPEN:
            connection.receive_data(frame_bytes(FrameType.CONNECTED))
    assert connection.state is state
    return connection


def decode_error_frame(data: bytes) -> pb.Error:
    frames = FrameDecoder().feed(data)
    assert len(frames) == 1
    frame_type, payload = frames[0]
    assert frame_type == FrameType.ERROR
    message = decode_payload(frame_type, payload)
    assert isinstance(message, pb.Error)
    return message


def expected_code(state: State, frame_type: FrameType) -> ErrorCode:
    if state is State.AWAITING_CONNECT:
        return ErrorCode.NOT_CONNECTED
    if frame_type is FrameType.CONNECT:
        return ErrorCode.ALREADY_CONNECTED
    return ErrorCode.PROTOCOL_ERROR


def test_table_covers_every_role_and_live_state() -> None:
    assert set(TRANSITIONS) == {(role, state) for role in Role for state in LIVE_STATES}


def test_payload_types_cover_frame_types() -> None:
    assert set(PAYLOAD_TYPES) | {FrameType.HEARTBEAT} == set(FrameType)
    assert set(SAMPLE_MESSAGES) == set(PAYLOAD_TYPES)


# Every (role, state, frame type) from the table.

CASES = [
    pytest.param(role, state, frame_type, id=f"{role.value}-{state.value}-{name}")
    for role in Role
    for state in LIVE_STATES
    for name, frame_type in FrameType.__members__.items()
]


@pytest.mark.parametrize(("role", "state", "frame_type"), CASES)
def test_transition(role: Role, state: State, frame_type: FrameType) -> None:
    connection = connection_in(role, state)
    data = frame_bytes(frame_type)
    allowed = TRANSITIONS[(role, state)]

    if frame_type in allowed:
        events = connection.receive_data(data)
        assert connection.state is allowed[frame_type]
        assert len(events) == 1
        if frame_type is FrameType.HEARTBEAT:
            assert events[0] == HeartbeatReceived()
        else:
            assert events[0] == FrameReceived(
                frame_type, SAMPLE_MESSAGES[frame_type], data[2:]
            )
        return

    with pytest.raises(ProtocolError) as caught:
        connection.receive_data(data)
    assert caught.value.code is expected_code(state, frame_type)
    assert frame_type.name.lower() in caught.value.reason.lower()
    assert connection.state is State.CLOSED


@pytest.mark.parametrize("role", list(Role))
def test_frame_before_connect_is_not_connected(role: Role) -> None:
    connection = Connection(role)
    rejected = FrameType.SEND if role is Role.SERVER else FrameType.SEND_ACK

    with pytest.raises(ProtocolError, match="before Connect") as caught:
        connection.receive_data(frame_bytes(rejected))
    assert caught.value.code is ErrorCode.NOT_CONNECTED


@pytest.mark.parametrize("state", [State.CONNECTING, State.OPEN])
def test_second_connect_is_already_connected(state: State) -> None:
    connection = connection_in(Role.SERVER, state)

    with pytest.raises(ProtocolError, match="Connect received twice") as caught:
        connection.receive_data(frame_bytes(FrameType.CONNECT))
    assert caught.value.code is ErrorCode.ALREADY_CONNECTED
    assert connection.state is State.CLOSED


# Closing.


def test_fail_returns_fatal_error_frame() -> None:
    connection = connection_in(Role.SERVER, State.AWAITING_CONNECT)
    with pytest.raises(ProtocolError) as caught:
        connection.receive_data(frame_bytes(FrameType.CURSOR))

    error = decode_error_frame(connection.fail(caught.value))

    assert error.code == ErrorCode.NOT_CONNECTED
    assert error.reason == caught.value.reason
    assert error.fatal
    assert error.client_id == 0
    assert connection.state is State.CLOSED


def test_fail_closes_open_connection() -> None:
    connection = connection_in(Role.SERVER, State.OPEN)

    data = connection.fail(ProtocolError("text message received"))

    assert decode_error_frame(data).code == ErrorCode.PROTOCOL_ERROR
    assert connection.state is State.CLOSED


@pytest.mark.parametrize("role", list(Role))
def test_closed_connection_ignores_input(role: Role) -> None:
    connection = connection_in(role, State.OPEN)
    connection.fail(ProtocolError("closing"))

    assert connection.receive_data(HEARTBEAT + b"\xff\xff\xff\xff\xff") == []
    assert connection.state is State.CLOSED


def test_malformed_payload_closes() -> None:
    connection = connection_in(Role.SERVER, State.OPEN)

    # Field 1 as a varint with no value byte.
    with pytest.raises(MalformedFrame, match="invalid Send payload") as caught:
        connection.receive_data(encode_frame(FrameType.SEND, b"\x08"))
    assert caught.value.code is ErrorCode.PROTOCOL_ERROR
    assert connection.state is State.CLOSED


@pytest.mark.parametrize("frame_type", [max(FrameType) + 1, 99, 255])
def test_unknown_frame_type_closes(frame_type: int) -> None:
    connection = connection_in(Role.SERVER, State.OPEN)

    with pytest.raises(MalformedFrame, match=f"unknown frame type {frame_type}"):
        connection.receive_data(encode_frame(frame_type, b""))
    assert connection.state is State.CLOSED


def test_frame_type_zero_closes() -> None:
    connection = connection_in(Role.SERVER, State.OPEN)

    with pytest.raises(MalformedFrame, match="frame type 0"):
        connection.receive_data(encode_frame(0, b"\x08\x01"))
    assert connection.state is State.CLOSED


# Sending.


def test_send_returns_encoded_frame() -> None:
    connection = connection_in(Role.CLIENT, State.OPEN)
    message = pb.Send(to=2, client_id=7, body=b"hello")

    assert connection.send(message) == encode(message)
    assert connection.state is State.OPEN


def test_client_moves_to_connecting_on_connect() -> None:
    connection = Connection(Role.CLIENT)

    connection.send(SAMPLE_MESSAGES[FrameType.CONNECT])

    assert connection.state is State.CONNECTING


def test_server_moves_to_open_on_connected() -> None:
    connection = connection_in(Role.SERVER, State.CONNECTING)

    connection.send(SAMPLE_MESSAGES[FrameType.CONNECTED])

    assert connection.state is State.OPEN


@pytest.mark.parametrize(
    "message",
    [pb.Error(code=ErrorCode.UNAUTHORIZED, fatal=True), pb.Reconnect(delay=1000)],
    ids=["fatal-error", "reconnect"],
)
def test_server_closes_on_sending_final_frame(message: ProtobufMessage) -> None:
    connection = connection_in(Role.SERVER, State.OPEN)

    connection.send(message)

    assert connection.state is State.CLOSED


@pytest.mark.parametrize(
    "message",
    [
        pb.Error(code=ErrorCode.CURSOR_AHEAD),
        pb.SendAck(client_id=1, seq=1),
        pb.Heartbeat(interval=60),
    ],
    ids=["non-fatal-error", "send-ack", "heartbeat-interval"],
)
def test_server_stays_open_on_other_frames(message: ProtobufMessage) -> None:
    connection = connection_in(Role.SERVER, State.OPEN)

    connection.send(message)

    assert connection.state is State.OPEN


def test_server_non_fatal_error_before_connected() -> None:
    # CURSOR_AHEAD is sent between Connect and Connected.
    connection = connection_in(Role.SERVER, State.CONNECTING)

    connection.send(pb.Error(code=ErrorCode.CURSOR_AHEAD))

    assert connection.state is State.CONNECTING


def test_client_send_error_keeps_state() -> None:
    # Only a server closes by sending; a client closes its transport instead.
    connection = connection_in(Role.CLIENT, State.OPEN)

    connection.send(pb.Error(code=ErrorCode.PROTOCOL_ERROR, fatal=True))

    assert connection.state is State.OPEN


# Heartbeats.


def test_heartbeat_bytes() -> None:
    assert Connection.heartbeat() == b"\x00"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("state", LIVE_STATES)
def test_heartbeat_keeps_state(role: Role, state: State) -> None:
    connection = connection_in(role, state)

    events = connection.receive_data(Connection.heartbeat() * 2)

    assert events == [HeartbeatReceived(), HeartbeatReceived()]
    assert connection.state is state


def test_heartbeats_between_frames() -> None:
    connection = connection_in(Role.CLIENT, State.OPEN)
    data = HEARTBEAT + frame_bytes(FrameType.MESSAGE) + HEARTBEAT

    events = connection.receive_data(data)

    assert [type(event) for event in events] == [
        HeartbeatReceived,
        FrameReceived,
        HeartbeatReceived,
    ]


# Pipelining and splitting.


def test_pipelined_frames_in_one_read() -> None:
    connection = Connection(Role.SERVER)
    sent = [
        FrameType.CONNECT,
        FrameType.SEND,
        FrameType.HEARTBEAT,
        FrameType.SYNC,
        FrameType.CURSOR,
        FrameType.HEARTBEAT_INTERVAL,
        FrameType.CONVERSATIONS,
        FrameType.CHANGE,
    ]

    events = connection.receive_data(b"".join(frame_bytes(t) for t in sent))

    received = [
        event.type if isinstance(event, FrameReceived) else FrameType.HEARTBEAT
        for event in events
    ]
    assert received == sent
    assert connection.state is State.CONNECTING


def test_client_pipelined_connected_and_push() -> None:
    connection = connection_in(Role.CLIENT, State.CONNECTING)
    data = (
        encode(pb.Error(code=ErrorCode.CURSOR_AHEAD))
        + frame_bytes(FrameType.CONNECTED)
        + frame_bytes(FrameType.MESSAGE)
    )

    events = connection.receive_data(data)

    assert [event.type for event in events if isinstance(event, FrameReceived)] == [
        FrameType.ERROR,
        FrameType.CONNECTED,
        FrameType.MESSAGE,
    ]
    assert connection.state is State.OPEN


def test_bad_frame_after_good_ones_closes() -> None:
    connection = Connection(Role.SERVER)
    data = frame_bytes(FrameType.CONNECT) + frame_bytes(FrameType.CONNECT)

    with pytest.raises(ProtocolError) as caught:
        connection.receive_data(data)
    assert caught.value.code is ErrorCode.ALREADY_CONNECTED
    assert connection.state is State.CLOSED


def test_frame_split_across_reads() -> None:
    connection = connection_in(Role.SERVER, State.OPEN)
    data = frame_bytes(FrameType.SEND)

    assert connection.receive_data(data[:3]) == []
    assert connection.buffered == 3
    events = connection.receive_data(data[3:])

    assert events == [
        FrameReceived(FrameType.SEND, SAMPLE_MESSAGES[FrameType.SEND], data[2:])
    ]
    assert connection.buffered == 0


def test_received_payload_is_raw_bytes() -> None:
    # Unknown fields survive in the payload, for forwarding without re-encoding.
    connection = connection_in(Role.SERVER, State.OPEN)
    payload = SAMPLE_MESSAGES[FrameType.CURSOR].SerializeToString() + b"\xf8\x01\x05"

    (event,) = connection.receive_data(encode_frame(FrameType.CURSOR, payload))

    assert isinstance(event, FrameReceived)
    assert event.payload == payload
    assert isinstance(event.message, pb.Cursor)
    assert event.message.seq == 3


def test_max_frame_size_applies_to_connection() -> None:
    connection = Connection(Role.SERVER, max_frame_size=8)

    with pytest.raises(ProtocolError) as caught:
        connection.receive_data(frame_bytes(FrameType.CONNECT))
    assert caught.value.code is ErrorCode.FRAME_TOO_LARGE
    assert connection.state is State.CLOSED
