"""docs/protocol.md against the codec: every hex example decodes and re-encodes.

Each example frame in the document is a fenced ``hex`` block preceded by a
marker ``<!-- frame: DIRECTION NAME conn=CONNECTION -->``, and followed by a
table that annotates its bytes and a line giving its size. Frames sent from
client to server (c2s) are fed to a server-role Connection, the others to a
client-role one, one pair of connections per CONNECTION, in document order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message as ProtobufMessage

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.connection import (
    TRANSITIONS,
    Connection,
    FrameReceived,
    HeartbeatReceived,
    Role,
    State,
)
from switchboard.protocol.frames import FrameType, encode

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

MARKER = re.compile(r"<!-- frame: (c2s|s2c) (\w+) conn=(\w+) -->")
WIRE_SIZE = re.compile(r"(\d+) bytes? on the wire\.")
BACKTICKED = re.compile(r"`([^`]*)`")

# The connections of the example exchange; the others appear in later sections.
EXCHANGE_CONNECTIONS = ("alice", "bob")


@dataclass
class DocFrame:
    line: int
    direction: str
    name: str
    conn: str
    data: bytes
    rows: list[list[str]]
    wire_size: int

    @property
    def frame_type(self) -> FrameType:
        return FrameType[re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).upper()]

    @property
    def label(self) -> str:
        return f"line {self.line}: {self.direction} {self.name} conn={self.conn}"


def table_rows(lines: list[str], start: int) -> tuple[list[list[str]], int]:
    """Return the body rows of the Markdown table at ``start``, and the next line."""
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in lines[start + 2 : end]
    ]
    return rows, end


def skip_blank(lines: list[str], index: int) -> int:
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


def parse_frames(text: str) -> list[DocFrame]:
    lines = text.splitlines()
    frames = []
    for index, line in enumerate(lines):
        match = MARKER.fullmatch(line.strip())
        if match is None:
            continue
        assert lines[index + 1] == "```hex", f"line {index + 2}: expected ```hex"
        close = lines.index("```", index + 2)
        data = bytes.fromhex(" ".join(lines[index + 2 : close]))
        rows, after = table_rows(lines, skip_blank(lines, close + 1))
        size = WIRE_SIZE.fullmatch(lines[skip_blank(lines, after)])
        assert size is not None, f"line {index + 1}: missing 'N bytes on the wire.'"
        direction, name, conn = match.groups()
        frames.append(
            DocFrame(index + 1, direction, name, conn, data, rows, int(size[1]))
        )
    return frames


def marked_table(text: str, marker: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(marker)
    rows, _ = table_rows(lines, start + 1)
    return rows


DOC_TEXT = DOC_PATH.read_text(encoding="utf-8")
DOC_FRAMES = parse_frames(DOC_TEXT)
FRAME_PARAMS = [pytest.param(frame, id=frame.label) for frame in DOC_FRAMES]


def camel_case(frame_type: FrameType) -> str:
    return "".join(part.capitalize() for part in frame_type.name.split("_"))


def field_value(message: ProtobufMessage, path: str) -> Any:
    """Resolve a path such as ``messages[0].sent_at`` in ``message``."""
    value: Any = message
    for part in path.split("."):
        name, _, index = part.partition("[")
        value = getattr(value, name)
        if index:
            value = value[int(index.rstrip("]"))]
    return value


class ConnectionPair:
    """Both ends of one example connection."""

    def __init__(self) -> None:
        self.client = Connection(Role.CLIENT)
        self.server = Connection(Role.SERVER)

    def open(self) -> None:
        # For a connection whose Connect the document does not show.
        self.server.receive_data(self.client.send(pb.Connect(version=1)))
        self.client.receive_data(self.server.send(pb.Connected(user_id=1)))
        assert self.client.state is State.OPEN
        assert self.server.state is State.OPEN


def decode_all(frames: list[DocFrame]) -> list[ProtobufMessage | None]:
    """Decode the frames in order; return each message, None for heartbeats."""
    pairs: dict[str, ConnectionPair] = {}
    messages: list[ProtobufMessage | None] = []
    for frame in frames:
        pair = pairs.get(frame.conn)
        if pair is None:
            pair = pairs[frame.conn] = ConnectionPair()
            if frame.frame_type is not FrameType.CONNECT:
                pair.open()
        if frame.direction == "c2s":
            receiver, sender = pair.server, pair.client
        else:
            receiver, sender = pair.client, pair.server

        events = receiver.receive_data(frame.data)

        assert len(events) == 1, frame.label
        (event,) = events
        if frame.frame_type is FrameType.HEARTBEAT:
            assert isinstance(event, HeartbeatReceived), frame.label
            assert Connection.heartbeat() == frame.data, frame.label
            messages.append(None)
            continue
        assert isinstance(event, FrameReceived), frame.label
        assert event.type is frame.frame_type, frame.label
        assert sender.send(event.message) == frame.data, frame.label
        messages.append(event.message)
    return messages


DECODED = dict(zip(map(id, DOC_FRAMES), decode_all(DOC_FRAMES), strict=True))


# The example frames.


def test_exchange_frames_in_order() -> None:
    exchange = [
        f"{frame.direction} {frame.name} {frame.conn}"
        for frame in DOC_FRAMES
        if frame.conn in EXCHANGE_CONNECTIONS
    ]

    assert exchange == [
        "c2s Connect alice",
        "s2c Connected alice",
        "c2s Send alice",
        "s2c SendAck alice",
        "s2c Message bob",
        "c2s Cursor bob",
        "c2s Heartbeat alice",
        "s2c Heartbeat alice",
    ]


def test_every_frame_type_has_an_example() -> None:
    example_types = {frame.frame_type for frame in DOC_FRAMES}

    assert example_types == set(FrameType)


@pytest.mark.parametrize("frame", FRAME_PARAMS)
def test_annotated_bytes_match_block(frame: DocFrame) -> None:
    annotated = b"".join(bytes.fromhex(row[0].strip("`")) for row in frame.rows)

    assert annotated == frame.data


@pytest.mark.parametrize("frame", FRAME_PARAMS)
def test_wire_size_line(frame: DocFrame) -> None:
    assert frame.wire_size == len(frame.data)


@pytest.mark.parametrize("frame", FRAME_PARAMS)
def test_annotated_values_match_decoded(frame: DocFrame) -> None:
    message = DECODED[id(frame)]
    checked = 0

    for _, meaning, value in frame.rows:
        if not value:
            continue
        path = BACKTICKED.search(meaning)
        literal = BACKTICKED.search(value)
        assert path is not None, f"{frame.label}: no field in {meaning!r}"
        assert literal is not None, f"{frame.label}: no value in {value!r}"
        assert message is not None, frame.label
        expected = json.loads(literal[1])
        actual = field_value(message, path[1])
        if isinstance(actual, bytes):
            actual = actual.decode()
        assert actual == expected, f"{frame.label}: {path[1]}"
        checked += 1

    # Every field set in the message is listed with its value, except
    # embedded messages, whose own fields are listed.
    if message is not None:
        assert checked >= len(
            [field for field, _ in message.ListFields() if field.message_type is None]
        )


def test_exchange_totals() -> None:
    rows = marked_table(DOC_TEXT, "<!-- totals: exchange -->")
    sizes = {
        (frame.conn, frame.direction): 0
        for frame in DOC_FRAMES
        if frame.conn in EXCHANGE_CONNECTIONS
    }
    for frame in DOC_FRAMES:
        if frame.conn in EXCHANGE_CONNECTIONS:
            sizes[frame.conn, frame.direction] += len(frame.data)
    expected = []
    for conn in EXCHANGE_CONNECTIONS:
        c2s, s2c = sizes[conn, "c2s"], sizes[conn, "s2c"]
        expected.append([conn, str(c2s), str(s2c), str(c2s + s2c)])
    c2s_all = sum(int(row[1]) for row in expected)
    s2c_all = sum(int(row[2]) for row in expected)
    expected.append(["all", str(c2s_all), str(s2c_all), str(c2s_all + s2c_all)])

    assert rows == expected


# Tables generated from the code.


def render_state_table() -> list[list[str]]:
    rows = []
    for (role, state), allowed in TRANSITIONS.items():
        stays = [camel_case(t) for t, target in allowed.items() if target is state]
        moves = [
            f"{camel_case(t)} → {target.value}"
            for t, target in allowed.items()
            if target is not state
        ]
        rows.append(
            [
                role.value,
                state.value,
                ", ".join(stays) or "-",
                ", ".join(moves) or "-",
            ]
        )
    return rows


def test_state_table_matches_transitions() -> None:
    rows = marked_table(DOC_TEXT, "<!-- states: generated from TRANSITIONS -->")

    assert rows == render_state_table()


def test_every_error_code_documented() -> None:
    lines = DOC_TEXT.splitlines()
    start = lines.index("## Error codes")
    table_start = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    rows, _ = table_rows(lines, table_start)
    documented = {int(row[0]): row[1].strip("`") for row in rows}

    assert documented == {code.value: code.name for code in ErrorCode}


def test_every_frame_type_documented() -> None:
    lines = DOC_TEXT.splitlines()
    start = lines.index("## Frame types")
    rows, _ = table_rows(lines, start + 2)
    documented = {int(row[0]): row[1] for row in rows}

    assert documented == {t.value: camel_case(t) for t in FrameType}


def test_encode_matches_doc_connect() -> None:
    # A fixed point that does not go through the document's own parser.
    connect = pb.Connect(
        version=1,
        token="tok-alice-0123456789abcdef01234567",
        device="phone",
        platform=pb.PLATFORM_ANDROID,
    )

    assert encode(connect) == DOC_FRAMES[0].data
