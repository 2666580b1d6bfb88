"""Replay the example exchange of docs/protocol.md against a real server.

The client frames are sent exactly as the document shows them. Each server
frame must equal the document's bytes once its clock field (server_time,
which no test can predict) is set to the document's value.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from google.protobuf.message import Message as ProtobufMessage

from switchboard.logic.auth import token_digest
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType, decode_payload, encode
from switchboard.protocol.framing import FrameDecoder
from switchboard.store.base import Session
from switchboard.store.sqlite import SqliteStore
from tests.protocol.test_protocol_doc import (
    DOC_PATH,
    EXCHANGE_CONNECTIONS,
    parse_frames,
)
from tests.support.server import ServerProcess

# Values the document's example uses; the test gives the server the same.
ALICE_TOKEN = "tok-alice-0123456789abcdef01234567"
ALICE_DEVICE = "phone"
BOB_TOKEN = "tok-bob-replay"
BOB_DEVICE = "tablet"
CLOCK_FIELDS = {FrameType.CONNECTED: "server_time"}


async def seed(data_dir: Path) -> None:
    """Create alice (user 1) and bob (user 2) with sessions for known tokens."""
    store = SqliteStore(data_dir / "switchboard.db")
    await store.open()
    for name, token, device in (
        ("alice", ALICE_TOKEN, ALICE_DEVICE),
        ("bob", BOB_TOKEN, BOB_DEVICE),
    ):
        user = await store.create_user(name, "not-a-password-hash", now=0)
        session = Session(token_digest(token), user.id, device, 1, 0, 2**62)  # type: ignore[arg-type]
        await store.create_session(session)
    await store.close()


def read_frame(sock: socket.socket, decoder: FrameDecoder) -> tuple[int, bytes, bytes]:
    """Return (type, payload, raw bytes) of the next frame from ``sock``."""
    raw = b""
    while True:
        byte = sock.recv(1)
        assert byte, "server closed the connection"
        raw += byte
        frames = decoder.feed(byte)
        if frames:
            frame_type, payload = frames[0]
            return frame_type, payload, raw


def with_doc_clock(received: ProtobufMessage, expected: ProtobufMessage) -> bytes:
    """Re-encode ``received`` with the document's clock values."""
    field = CLOCK_FIELDS.get(FrameType(encode(received)[1]))
    if field is not None:
        assert getattr(received, field) > 1_700_000_000_000
        setattr(received, field, getattr(expected, field))
    return encode(received)


def test_example_exchange_replays_byte_for_byte(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    asyncio.run(seed(tmp_path / "data"))
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    server.start()
    sockets: dict[str, socket.socket] = {}
    try:
        for name in EXCHANGE_CONNECTIONS:
            sockets[name] = socket.create_connection(server.tcp_address, timeout=5)
        decoders = {name: FrameDecoder() for name in sockets}
        # Bob's Connect is not part of the example; it opens his connection.
        sockets["bob"].sendall(
            encode(pb.Connect(version=1, token=BOB_TOKEN, device=BOB_DEVICE))
        )
        assert read_frame(sockets["bob"], decoders["bob"])[0] == FrameType.CONNECTED

        frames = [f for f in parse_frames(DOC_PATH.read_text()) if f.conn in sockets]
        assert len(frames) == 8
        for frame in frames:
            sock = sockets[frame.conn]
            if frame.direction == "c2s":
                sock.sendall(frame.data)
                continue
            frame_type, payload, raw = read_frame(sock, decoders[frame.conn])
            assert frame_type == frame.frame_type, frame.label
            if frame_type == FrameType.HEARTBEAT:
                assert raw == frame.data, frame.label
                continue
            [(doc_type, doc_payload)] = FrameDecoder().feed(frame.data)
            expected = decode_payload(doc_type, doc_payload)
            received = decode_payload(frame_type, payload)
            assert with_doc_clock(received, expected) == frame.data, frame.label
    finally:
        for sock in sockets.values():
            sock.close()
        server.terminate()
