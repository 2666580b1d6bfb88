"""Coverage-guided fuzzing of the protocol state machine (atheris).

Run: ``python tests/fuzz/fuzz_connection.py [libFuzzer flags] CORPUS_DIR...``.
Each input drives one Connection, server or client role, through a mix of
raw bytes, well-framed frames of any type and payload, and frames it sends
itself. Only ProtocolError may be raised, and after it the connection is
CLOSED and yields nothing more. Every event must be a transition that the
TRANSITIONS table allows from the state before it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from switchboard.errors import ProtocolError
    from switchboard.protocol import pb
    from switchboard.protocol.connection import (
        TRANSITIONS,
        Connection,
        FrameReceived,
        Role,
        State,
    )
    from switchboard.protocol.frames import FrameType
    from switchboard.protocol.framing import encode_frame

MAX_FRAME_SIZE = 4096

# Frames the connection may send, chosen by index.
OUTGOING = (
    pb.Connect(version=1, token="t", device="d"),
    pb.Connected(user_id=1, heartbeat=30),
    pb.Error(code=1, reason="x", fatal=True),
    pb.Error(code=23, reason="x"),
    pb.Reconnect(delay=10),
    pb.Cursor(seq=3),
)


def receive(connection: Connection, data: bytes) -> None:
    before = connection.state
    try:
        events = connection.receive_data(data)
    except ProtocolError:
        if connection.state is not State.CLOSED:
            raise AssertionError("a protocol error left the connection open") from None
        return
    if before is State.CLOSED and events:
        raise AssertionError("a closed connection yielded events")
    for event in events:
        if isinstance(event, FrameReceived):
            allowed = TRANSITIONS.get((connection.role, before), {})
            if event.type not in allowed:
                raise AssertionError(f"{event.type!r} accepted in state {before}")
            before = allowed[event.type]


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    role = Role.SERVER if provider.ConsumeBool() else Role.CLIENT
    connection = Connection(role, MAX_FRAME_SIZE)
    for _ in range(provider.ConsumeIntInRange(1, 16)):
        action = provider.ConsumeIntInRange(0, 2)
        if action == 0:
            receive(
                connection, provider.ConsumeBytes(provider.ConsumeIntInRange(0, 64))
            )
        elif action == 1:
            frame_type = provider.ConsumeIntInRange(0, max(FrameType) + 1)
            payload = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 48))
            receive(connection, encode_frame(frame_type, payload))
        else:
            message = OUTGOING[provider.ConsumeIntInRange(0, len(OUTGOING) - 1)]
            connection.send(message)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
