"""Client session against a scripted gateway on 127.0.0.1.

The fake gateway speaks the real framing through the sans-IO server
connection, and each test plays the server's side frame by frame: resends,
sync paging, gaps, cursor errors, rate limits, fatal errors, drains and
heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf.message import Message as ProtobufMessage

from switchboard.client import (
    Client,
    ClientOptions,
    ClientState,
    HeartbeatPolicy,
    MemoryStateStore,
    SendRejected,
    SessionEnded,
)
from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.connection import (
    Connection,
    FrameReceived,
    HeartbeatReceived,
    Role,
)
from switchboard.protocol.frames import FrameType
from switchboard.protocol.framing import HEARTBEAT

ME = 1
PEER = 2
NAMES = {ME: "me", PEER: "peer"}


class FakeConnection:
    """The server's side of one client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.writer = writer
        self.protocol = Connection(Role.SERVER, max_frame_size=1 << 20)
        self.frames: asyncio.Queue[FrameReceived | None] = asyncio.Queue()
        self.heartbeats = 0
        self.echo_heartbeats = True
        self._reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            for event in self.protocol.receive_data(data):
                if isinstance(event, HeartbeatReceived):
                    self.heartbeats += 1
                    if self.echo_heartbeats:
                        self.writer.write(HEARTBEAT)
                else:
                    await self.frames.put(event)
        await self.frames.put(None)

    async def expect(
        self, frame_type: FrameType, within: float = 5.0
    ) -> ProtobufMessage:
        async with asyncio.timeout(within):
            event = await self.frames.get()
        assert event is not None, f"connection closed while expecting {frame_type.name}"
        assert event.type is frame_type, (
            f"expected {frame_type.name}, got {event.type.name}"
        )
        return event.message

    async def expect_none(self, frame_type: FrameType, within: float) -> None:
        """Fail if a ``frame_type`` frame arrives within ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while (event := await self.frames.get()) is not None:
                    assert event.type is not frame_type, f"unexpected {frame_type.name}"

    async def expect_closed(self, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while (event := await self.frames.get()) is not None:
                assert event.type is FrameType.CURSOR, f"unexpected {event.type.name}"

    def send(self, *messages: ProtobufMessage) -> None:
        for message in messages:
            self.writer.write(self.protocol.send(message))

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._reader_task
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class FakeGateway:
    """A TCP listener whose accepted connections the test drives."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[FakeConnection] = asyncio.Queue()
        self.connections: list[FakeConnection] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connection = FakeConnection(reader, writer)
        self.connections.append(connection)
        await self.accepted.put(connection)

    @property
    def address(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def accept(self, within: float = 5.0) -> tuple[FakeConnection, pb.Connect]:
        """Wait for the next connection and its Connect frame."""
        async with asyncio.timeout(within):
            connection = await self.accepted.get()
        connect = await connection.expect(FrameType.CONNECT)
        assert isinstance(connect, pb.Connect)
        return connection, connect

    async def no_connection(self, within: float) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(within):
                await self.accepted.get()

    async def close(self) -> None:
        for connection in self.connections:
            await connection.aclose()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def connected(
    head_seq: int = 0,
    messages: list[pb.Message] | None = None,
    *,
    has_more: bool = False,
    heartbeat: int = 30,
    last_client_id: int = 0,
    after_seq: int = 0,
) -> pb.Connected:
    return pb.Connected(
        user_id=ME,
        heartbeat=heartbeat,
        max_heartbeat=600,
        head_seq=head_seq,
        sync=pb.SyncResponse(
            after_seq=after_seq,
            messages=messages or [],
            has_more=has_more,
            head_seq=head_seq,
        ),
        last_client_id=last_client_id,
    )


def entry(seq: int, text: str = "", sender: int = PEER) -> pb.Message:
    return pb.Message(
        seq=seq,
        id=100 + seq,
        sender=sender,
        recipient=ME if sender == PEER else PEER,
        body=(text or f"m{seq}").encode(),
        sent_at=1_000 + seq,
    )


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway()
    await gateway.start()
    yield gateway
    await gateway.close()


def make_client(
    gateway: FakeGateway,
    *,
    store: MemoryStateStore | None = None,
    heartbeat_policy: HeartbeatPolicy | None = None,
    limits: dict[str, int] | None = None,
    **options: float,
) -> Client:
    """Make a client of ``gateway``; ``limits`` are added to the discovery."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/gateways":
            listing = {"transport": "tcp", "address": gateway.address}
            return httpx.Response(200, json={"gateways": [listing], **(limits or {})})
        if request.url.path == "/v1/users":
            ids = [int(i) for i in request.url.params.get_list("id")]
            users = [{"id": i, "name": NAMES[i]} for i in ids if i in NAMES]
            return httpx.Response(200, json={"users": users})
        return httpx.Response(404, json={"error": {"code": "x", "message": "x"}})

    settings = {
        "backoff_base": 0.02,
        "backoff_cap": 0.1,
        "connect_timeout": 2.0,
        "echo_timeout": 0.5,
        "cursor_flush_interval": 0.05,
    }
    settings.update(options)
    state = ClientState(token="tok", user_id=ME, name="me", device="dev")
    return Client(
        "http://gateway.test",
        state=store or MemoryStateStore(state),
        fallback_gateways=[],
        options=ClientOptions(**settings),  # type: ignore[arg-type]
        http_transport=httpx.MockTransport(handler),
        heartbeat_policy=heartbeat_policy,
    )


async def open_session(
    gateway: FakeGateway, client: Client, reply: pb.Connected
) -> tuple[FakeConnection, pb.Connect]:
    connecting = asyncio.create_task(client.connect(timeout=5))
    connection, connect = await gateway.accept()
    connection.send(reply)
    await connecting
    return connection, connect


async def next_message(client: Client, within: float = 5.0) -> tuple[int, str]:
    async with asyncio.timeout(within):
        message = await client.next_message()
    return message.seq, message.text or ""


async def test_connect_carries_cursor_and_catches_up(gateway: FakeGateway) -> None:
    state = ClientState(token="tok", user_id=ME, name="me", device="dev", cursor=5)
    client = make_client(gateway, store=MemoryStateStore(state))
    _, connect = await open_session(
        gateway, client, connected(7, [entry(6), entry(7)], after_seq=5)
    )
    assert connect.version == 1
    assert connect.token == "tok"
    assert connect.device == "dev"
    assert connect.last_seq == 5
    assert connect.platform == pb.PLATFORM_CLI
    assert await next_message(client) == (6, "m6")
    assert await next_message(client) == (7, "m7")
    assert client.caught_up
    await client.close()


async def test_message_names_are_looked_up(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    await open_session(gateway, client, connected(1, [entry(1)]))
    message = await client.next_message()
    assert message.sender_name == "peer"
    assert message.recipient_name == "me"
    assert not message.outgoing
    await client.close()


async def test_sync_pages_until_no_more(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(
        gateway, client, connected(6, [entry(1), entry(2)], has_more=True)
    )
    for after in (2, 4):
        sync = await connection.expect(FrameType.SYNC)
        assert isinstance(sync, pb.SyncRequest)
        assert sync.after_seq == after
        page = [entry(after + 1), entry(after + 2)]
        connection.send(
            pb.SyncResponse(
                after_seq=after, messages=page, has_more=after < 4, head_seq=6
            )
        )
    released = [await next_message(client) for _ in range(6)]
    assert [seq for seq, _ in released] == [1, 2, 3, 4, 5, 6]
    await connection.expect_none(FrameType.SYNC, within=0.2)
    await client.close()


async def test_empty_sync_page_is_not_repeated(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(1, [entry(1)]))
    connection.send(entry(3))
    await connection.expect(FrameType.SYNC)
    connection.send(pb.SyncResponse(after_seq=1, messages=[], head_seq=3))
    await connection.expect_none(FrameType.SYNC, within=0.2)
    assert await next_message(client) == (1, "m1")
    await client.close()


async def test_gap_in_pushes_triggers_sync(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(1, [entry(1)]))
    connection.send(entry(3))
    sync = await connection.expect(FrameType.SYNC)
    assert isinstance(sync, pb.SyncRequest)
    assert sync.after_seq == 1
    connection.send(
        pb.SyncResponse(after_seq=1, messages=[entry(2), entry(3)], head_seq=3)
    )
    assert [await next_message(client) for _ in range(3)] == [
        (1, "m1"),
        (2, "m2"),
        (3, "m3"),
    ]
    await client.close()


async def test_duplicate_push_is_handed_out_once(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(1, [entry(1)]))
    connection.send(entry(1), entry(2), entry(2))
    assert await next_message(client) == (1, "m1")
    assert await next_message(client) == (2, "m2")
    with pytest.raises(TimeoutError):
        await next_message(client, within=0.2)
    await client.close()


async def test_cursor_ahead_continues_from_server_head(gateway: FakeGateway) -> None:
    state = ClientState(token="tok", user_id=ME, name="me", device="dev", cursor=10)
    store = MemoryStateStore(state)
    client = make_client(gateway, store=store)
    connecting = asyncio.create_task(client.connect(timeout=5))
    connection, connect = await gateway.accept()
    assert connect.last_seq == 10
    connection.send(
        pb.Error(code=ErrorCode.CURSOR_AHEAD, reason="cursor 10 is above 3"),
        connected(3, after_seq=3),
    )
    await connecting
    assert client.cursor == 3
    assert store.load().cursor == 3
    connection.send(entry(4))
    assert await next_message(client) == (4, "m4")
    await client.close()


async def test_cursor_is_sent_and_saved(gateway: FakeGateway) -> None:
    store = MemoryStateStore(
        ClientState(token="tok", user_id=ME, name="me", device="dev")
    )
    client = make_client(gateway, store=store)
    connection, _ = await open_session(
        gateway, client, connected(2, [entry(1), entry(2)])
    )
    await next_message(client)
    await next_message(client)
    cursor = await connection.expect(FrameType.CURSOR)
    assert isinstance(cursor, pb.Cursor)
    assert cursor.seq == 2
    assert store.load().cursor == 2
    await client.close()


async def test_new_client_ids_start_above_server_value(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0, last_client_id=41))
    sending = asyncio.create_task(client.send(PEER, "hello"))
    send = await connection.expect(FrameType.SEND)
    assert isinstance(send, pb.Send)
    assert send.client_id == 42
    assert send.to == PEER
    assert send.body == b"hello"
    connection.send(pb.SendAck(client_id=42, seq=1, id=7, sent_at=5))
    sent = await sending
    assert (sent.client_id, sent.id, sent.seq, sent.sent_at) == (42, 7, 1, 5)
    # The sender's own message enters its inbox at the acknowledged seq.
    message = await client.next_message()
    assert (message.seq, message.outgoing, message.text) == (1, True, "hello")
    await client.close()


async def test_unacked_send_resent_on_reconnect(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    first, _ = await open_session(gateway, client, connected(0))
    sending = asyncio.create_task(client.send(PEER, "again"))
    send = await first.expect(FrameType.SEND)
    assert isinstance(send, pb.Send)
    first.close()

    second, connect = await gateway.accept()
    resent = await second.expect(FrameType.SEND)
    assert isinstance(resent, pb.Send)
    assert resent.client_id == send.client_id
    assert resent.body == b"again"
    second.send(connected(0, last_client_id=send.client_id))
    second.send(pb.SendAck(client_id=send.client_id, seq=1, id=9, sent_at=5))
    sent = await sending
    assert sent.id == 9
    assert connect.last_seq == 0
    await client.close()


async def test_resends_keep_original_order(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    first, _ = await open_session(gateway, client, connected(0))
    tasks = [asyncio.create_task(client.send(PEER, f"m{i}")) for i in range(5)]
    for _ in range(5):
        await first.expect(FrameType.SEND)
    first.close()
    second, _ = await gateway.accept()
    client_ids = []
    for _ in range(5):
        send = await second.expect(FrameType.SEND)
        assert isinstance(send, pb.Send)
        client_ids.append(send.client_id)
    assert client_ids == sorted(client_ids)
    second.send(connected(0))
    for seq, client_id in enumerate(client_ids, start=1):
        second.send(pb.SendAck(client_id=client_id, seq=seq, id=seq, sent_at=1))
    sent = await asyncio.gather(*tasks)
    assert [s.client_id for s in sent] == client_ids
    await client.close()


async def test_same_client_id_joins_pending_send(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    first = asyncio.create_task(client.send(PEER, "once", client_id=7))
    second = asyncio.create_task(client.send(PEER, "once", client_id=7))
    await connection.expect(FrameType.SEND)
    connection.send(pb.SendAck(client_id=7, seq=1, id=70, sent_at=5))
    assert await first == await second
    # Acknowledged ids return the kept receipt, without a frame.
    assert await client.send(PEER, "once", client_id=7) == await first
    await connection.expect_none(FrameType.SEND, within=0.2)
    await client.close()


def rate_limited(client_id: int, retry_after_ms: int) -> pb.Error:
    return pb.Error(
        code=ErrorCode.RATE_LIMITED,
        reason="too fast",
        client_id=client_id,
        retry_after=retry_after_ms,
    )


async def test_rate_limited_send_is_retried(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    sending = asyncio.create_task(client.send(PEER, "slow down"))
    send = await connection.expect(FrameType.SEND)
    assert isinstance(send, pb.Send)
    connection.send(rate_limited(send.client_id, retry_after_ms=50))
    loop = asyncio.get_running_loop()
    rejected_at = loop.time()
    retry = await connection.expect(FrameType.SEND)
    assert isinstance(retry, pb.Send)
    assert loop.time() - rejected_at >= 0.04
    assert retry.client_id == send.client_id
    connection.send(pb.SendAck(client_id=send.client_id, seq=1, id=3, sent_at=1))
    assert (await sending).id == 3
    await client.close()


async def test_repeated_rate_limits_warn_once(
    gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    sending = asyncio.create_task(client.send(PEER, "slow down"))
    with caplog.at_level(logging.WARNING, logger="switchboard.client"):
        for _ in range(5):
            send = await connection.expect(FrameType.SEND)
            assert isinstance(send, pb.Send)
            connection.send(rate_limited(send.client_id, retry_after_ms=5))
        send = await connection.expect(FrameType.SEND)
    connection.send(pb.SendAck(client_id=send.client_id, seq=1, id=3, sent_at=1))
    assert (await sending).id == 3
    warnings = [
        r.getMessage() for r in caplog.records if "RATE_LIMITED" in r.getMessage()
    ]
    assert warnings == [
        "1 request(s) failed with RATE_LIMITED since the last report; the latest"
        " is sent again in 5 ms"
    ]
    await client.close()


@pytest.mark.parametrize(
    "code", [ErrorCode.UNKNOWN_RECIPIENT, ErrorCode.INVALID_MESSAGE]
)
async def test_permanent_send_error_raises(
    gateway: FakeGateway, code: ErrorCode
) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    sending = asyncio.create_task(client.send(99, "to nobody"))
    send = await connection.expect(FrameType.SEND)
    assert isinstance(send, pb.Send)
    connection.send(
        pb.Error(code=code, reason="no such user", client_id=send.client_id)
    )
    with pytest.raises(SendRejected) as info:
        await sending
    assert info.value.code is code
    assert info.value.client_id == send.client_id
    assert client.connected
    await client.close()


@pytest.mark.parametrize(
    "code",
    [ErrorCode.SESSION_REPLACED, ErrorCode.TOKEN_REVOKED, ErrorCode.UNAUTHORIZED],
)
async def test_session_ending_error_stops_reconnecting(
    gateway: FakeGateway, code: ErrorCode
) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    pending = asyncio.create_task(client.send(PEER, "lost"))
    await connection.expect(FrameType.SEND)
    connection.send(pb.Error(code=code, reason="ended", fatal=True))
    connection.close()
    with pytest.raises(SessionEnded) as info:
        await client.next_message()
    assert info.value.code is code
    with pytest.raises(SessionEnded):
        await pending
    await gateway.no_connection(within=0.3)
    await client.close()


async def test_rejected_token_fails_connect(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connecting = asyncio.create_task(client.connect(timeout=5))
    connection, _ = await gateway.accept()
    connection.send(
        pb.Error(code=ErrorCode.UNAUTHORIZED, reason="bad token", fatal=True)
    )
    with pytest.raises(SessionEnded) as info:
        await connecting
    assert info.value.code is ErrorCode.UNAUTHORIZED
    await client.close()


async def test_other_fatal_error_reconnects(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(gateway, client, connected(0))
    connection.send(pb.Error(code=ErrorCode.INTERNAL_ERROR, reason="oops", fatal=True))
    connection.close()
    second, connect = await gateway.accept()
    assert connect.token == "tok"
    second.send(connected(0))
    await client.close()


async def test_reconnect_frame_waits_delay(gateway: FakeGateway) -> None:
    client = make_client(gateway)
    connection, _ = await open_session(
        gateway, client, connected(2, [entry(1), entry(2)])
    )
    await next_message(client)
    loop = asyncio.get_running_loop()
    connection.send(pb.Reconnect(delay=200, reason="draining"))
    asked_at = loop.time()
    connection.close()
    _, connect = await gateway.accept()
    assert loop.time() - asked_at >= 0.19
    assert connect.last_seq == 2
    await client.close()


async def test_silent_connection_is_dropped(gateway: FakeGateway) -> None:
    policy = HeartbeatPolicy(min_interval=1)
    client = make_client(gateway, heartbeat_policy=policy, echo_timeout=0.3)
    connection, _ = await open_session(gateway, client, connected(0, heartbeat=1))
    connection.echo_heartbeats = False
    second, _ = await gateway.accept(within=5)
    assert connection.heartbeats >= 1
    second.send(connected(0, heartbeat=1))
    await client.close()


async def test_answered_heartbeats_probe_longer_interval(gateway: FakeGateway) -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0, min_interval=1)
    client = make_client(gateway, heartbeat_policy=policy)
    connection, _ = await open_session(gateway, client, connected(0, heartbeat=1))
    request = await connection.expect(FrameType.HEARTBEAT_INTERVAL, within=5)
    assert isinstance(request, pb.Heartbeat)
    assert request.interval == 2
    assert connection.heartbeats >= 1
    connection.send(pb.Heartbeat(interval=2))
    await asyncio.sleep(0.05)
    assert policy.interval == 2
    await client.close()


async def test_close_flushes_cursor(gateway: FakeGateway) -> None:
    store = MemoryStateStore(
        ClientState(token="tok", user_id=ME, name="me", device="dev")
    )
    client = make_client(gateway, store=store, cursor_flush_interval=60)
    connection, _ = await open_session(gateway, client, connected(1, [entry(1)]))
    await next_message(client)
    await client.close()
    cursor = await connection.expect(FrameType.CURSOR)
    assert isinstance(cursor, pb.Cursor)
    assert cursor.seq == 1
    assert store.load().cursor == 1
    await connection.expect_closed()
