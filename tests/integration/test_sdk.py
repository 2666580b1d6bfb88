"""The SDK against a real server process: delivery, resends, sync, devices."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from switchboard.client import (
    Client,
    ClientOptions,
    ClientState,
    Gateway,
    MemoryStateStore,
    Message,
    NotConnected,
    NotLoggedIn,
    SendRejected,
    Sent,
    SessionEnded,
    Transport,
    TransportFactory,
    UserNotFound,
)
from switchboard.client.transport import open_transport
from switchboard.errors import ConnectionBroken, ErrorCode
from switchboard.protocol.frames import FrameType
from switchboard.protocol.framing import FrameDecoder
from tests.integration.conftest import ClientFactory, password_of
from tests.support.server import ServerProcess

TRANSPORTS = ["tcp", "ws"]


async def receive(client: Client, count: int, within: float = 10.0) -> list[Message]:
    messages = []
    async with asyncio.timeout(within):
        for _ in range(count):
            messages.append(await client.next_message())
    return messages


async def assert_no_message(client: Client, within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(within):
            message = await client.next_message()
            pytest.fail(f"unexpected message {message}")


class FaultyTransport(Transport):
    """A real transport that drops the connection once, at a chosen frame.

    ``drop_after_send``: abort right after writing the first Send frame.
    Otherwise: abort instead of delivering the first received SendAck, so the
    server has stored the message but the client never sees the receipt.
    """

    def __init__(self, inner: Transport, faults: dict[str, int], drop_after_send: bool):
        self.name = inner.name
        self.address = inner.address
        self._inner = inner
        self._faults = faults
        self._drop_after_send = drop_after_send
        self._decoder = FrameDecoder(1 << 24)

    async def send(self, data: bytes) -> None:
        await self._inner.send(data)
        sends = [t for t, _ in FrameDecoder().feed(data) if t == FrameType.SEND]
        if self._drop_after_send and sends and self._faults["left"] > 0:
            self._faults["left"] -= 1
            self._inner.abort()

    async def receive(self) -> bytes:
        data = await self._inner.receive()
        types = [t for t, _ in self._decoder.feed(data)]
        acked = FrameType.SEND_ACK in types
        if acked and not self._drop_after_send and self._faults["left"] > 0:
            self._faults["left"] -= 1
            self._inner.abort()
            raise ConnectionBroken("test dropped the connection before the SendAck")
        return data

    async def close(self) -> None:
        await self._inner.close()

    def abort(self) -> None:
        self._inner.abort()


def faulty_factory(
    faults: dict[str, int], *, drop_after_send: bool
) -> TransportFactory:
    async def factory(gateway: Gateway) -> Transport:
        faults["opened"] += 1
        return FaultyTransport(await open_transport(gateway), faults, drop_after_send)

    return factory


# Delivery.


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_send_and_receive(clients: ClientFactory, transport: str) -> None:
    alice = await clients("alice", transport=transport)
    bob = await clients("bob", transport=transport)
    sent = await alice.send("bob", "hello bob")
    reply = await bob.send(alice.user_id, "hello alice")

    # Each inbox contains both messages, the user's own one marked outgoing.
    received, bob_own = await receive(bob, 2)
    assert received.id == sent.id
    assert received.text == "hello bob"
    assert received.sender_name == "alice"
    assert received.recipient_name == "bob"
    assert not received.outgoing
    assert (bob_own.id, bob_own.outgoing, bob_own.seq) == (reply.id, True, reply.seq)
    alice_own, incoming = await receive(alice, 2)
    assert (alice_own.id, alice_own.outgoing) == (sent.id, True)
    assert alice_own.seq == sent.seq
    assert (incoming.id, incoming.text) == (reply.id, "hello alice")
    await assert_no_message(bob, within=0.3)
    await assert_no_message(alice, within=0.3)


async def test_send_across_transports(clients: ClientFactory) -> None:
    alice = await clients("alice", transport="tcp")
    bob = await clients("bob", transport="ws")
    sent = await alice.send("bob", "tcp to ws")
    (received,) = await receive(bob, 1)
    assert received.id == sent.id


async def test_live_messages_get_recipient_and_time(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    alice_tablet = await clients("alice", device="tablet")
    before = int(time.time() * 1000)
    sent = await alice.send("bob", "what time is it")
    (pushed,) = await receive(bob, 1)
    (own,) = await receive(alice_tablet, 1)
    after = int(time.time() * 1000)

    # Live pushes and the SendAck carry no time: the SDK estimates it from
    # the server clock, within the network delay (here, the same machine).
    for sent_at in (sent.sent_at, pushed.sent_at, own.sent_at):
        assert before - 1000 <= sent_at <= after + 1000
    assert (pushed.sender_id, pushed.recipient_id) == (alice.user_id, bob.user_id)
    assert (own.sender_id, own.recipient_id) == (alice.user_id, bob.user_id)


async def test_unknown_recipient_raises(clients: ClientFactory) -> None:
    alice = await clients("alice")
    with pytest.raises(UserNotFound):
        await alice.send("nobody", "hello")
    with pytest.raises(SendRejected) as info:
        await alice.send(999_999, "hello")
    assert info.value.code is ErrorCode.UNKNOWN_RECIPIENT
    # The connection survives a rejected message.
    await clients("bob", connect=False)
    assert (await alice.send("bob", "still here")).id > 0


async def test_history_pages_newest_first(clients: ClientFactory) -> None:
    alice = await clients("alice")
    await clients("bob", connect=False)
    sent = [await alice.send("bob", f"m{i}") for i in range(5)]
    page = await alice.history("bob", limit=3)
    assert [m.text for m in page.messages] == ["m4", "m3", "m2"]
    assert page.has_more
    older = await alice.history("bob", before=page.messages[-1].id, limit=3)
    assert [m.text for m in older.messages] == ["m1", "m0"]
    assert not older.has_more
    assert [m.id for m in older.messages] == [sent[1].id, sent[0].id]
    assert all(m.outgoing for m in page.messages)


# Exactly once across lost acknowledgements.


def same_receipt(retry: Sent, first: Sent) -> bool:
    """Whether two receipts are for the one stored message. Their times are
    each client's estimate of the server clock, so they may differ a little."""
    if abs(retry.sent_at - first.sent_at) > 5_000:
        return False
    return dataclasses.replace(retry, sent_at=first.sent_at) == first


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_lost_ack_resend_is_stored_once(
    server: ServerProcess, clients: ClientFactory, transport: str
) -> None:
    faults = {"left": 1, "opened": 0}
    store = MemoryStateStore(ClientState())
    alice = await clients(
        "alice",
        transport=transport,
        store=store,
        open_transport=faulty_factory(faults, drop_after_send=False),
    )
    bob = await clients("bob", transport=transport)

    first = asyncio.create_task(alice.send("bob", "exactly once"))
    await asyncio.sleep(0)
    # The application retries the same message while the first try waits.
    sent = await asyncio.wait_for(first, 15)
    assert faults["left"] == 0, "the SendAck was never dropped"
    assert faults["opened"] >= 2
    retry = await alice.send("bob", "exactly once", client_id=sent.client_id)
    assert same_receipt(retry, sent)

    # A new process of the same device, retrying the same client id, gets
    # the receipt the server stored.
    await alice.close()
    restarted = Client(
        server.base_url,
        state=store,
        options=ClientOptions(backoff_base=0.05, backoff_cap=0.5),
    )
    try:
        await restarted.connect(transport, timeout=10)
        again = await restarted.send("bob", "exactly once", client_id=sent.client_id)
    finally:
        await restarted.close()
    assert same_receipt(again, sent)

    (received,) = await receive(bob, 1)
    assert received.id == sent.id
    await assert_no_message(bob)
    page = await bob.history("alice")
    assert [m.text for m in page.messages] == ["exactly once"]


async def test_drop_after_send_is_stored_once(clients: ClientFactory) -> None:
    faults = {"left": 1, "opened": 0}
    alice = await clients(
        "alice", open_transport=faulty_factory(faults, drop_after_send=True)
    )
    bob = await clients("bob")
    sending = asyncio.create_task(alice.send("bob", "dropped once"))
    same = asyncio.create_task(alice.send("bob", "dropped once", client_id=1))
    sent = await asyncio.wait_for(sending, 15)
    assert sent.client_id == 1
    assert await asyncio.wait_for(same, 15) == sent
    assert faults["left"] == 0
    assert faults["opened"] >= 2

    (received,) = await receive(bob, 1)
    assert received.id == sent.id
    await assert_no_message(bob)
    page = await bob.history("alice")
    assert [m.id for m in page.messages] == [sent.id]


# Catching up and devices.


async def test_offline_device_catches_up(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob", connect=False)
    # More than one sync page (the server's default page is 100 messages).
    count = 250
    sent = await asyncio.gather(*(alice.send("bob", f"m{i}") for i in range(count)))
    await bob.connect(timeout=10)
    received = await receive(bob, count, within=30)
    assert [m.text for m in received] == [f"m{i}" for i in range(count)]
    assert [m.seq for m in received] == list(range(1, count + 1))
    assert [m.id for m in received] == [s.id for s in sent]
    assert bob.caught_up
    await assert_no_message(bob)


async def test_cursor_survives_restart_of_client(
    server: ServerProcess, clients: ClientFactory
) -> None:
    alice = await clients("alice")
    store = MemoryStateStore(ClientState())
    bob = await clients("bob", store=store)
    for i in range(3):
        await alice.send("bob", f"m{i}")
    await receive(bob, 2)
    await bob.close()
    assert store.load().cursor == 2
    await alice.send("bob", "m3")

    restarted = Client(server.base_url, state=store)
    try:
        await restarted.connect(timeout=10)
        received = await receive(restarted, 2)
        assert [m.text for m in received] == ["m2", "m3"]
        await assert_no_message(restarted)
    finally:
        await restarted.close()


async def test_every_device_gets_each_message_once(clients: ClientFactory) -> None:
    phone = await clients("alice", "phone")
    laptop = await clients("alice", "laptop", transport="ws")
    tablet = await clients("alice", "tablet", connect=False)
    bob = await clients("bob")

    incoming = await bob.send("alice", "to every device")
    outgoing = await phone.send("bob", "from the phone")
    expected = [(incoming.id, "to every device"), (outgoing.id, "from the phone")]

    for device in (phone, laptop):
        received = await receive(device, 2)
        assert [(m.id, m.text) for m in received] == expected
        assert [m.outgoing for m in received] == [False, True]
        await assert_no_message(device, within=0.3)

    await tablet.connect(timeout=10)
    received = await receive(tablet, 2)
    assert [(m.id, m.text) for m in received] == expected
    await assert_no_message(tablet, within=0.3)

    bob_received = await receive(bob, 2)
    assert [m.id for m in bob_received] == [incoming.id, outgoing.id]


# Sessions ending.


async def test_logout_closes_other_clients_of_device(
    server: ServerProcess, clients: ClientFactory
) -> None:
    store = MemoryStateStore(ClientState())
    alice = await clients("alice", store=store)
    other = Client(server.base_url, state=store)
    try:
        await other.logout()
        with pytest.raises(SessionEnded) as info:
            async with asyncio.timeout(10):
                await alice.next_message()
        assert info.value.code is ErrorCode.TOKEN_REVOKED
        assert not other.logged_in
    finally:
        await other.close()


async def test_logout_forgets_token(clients: ClientFactory) -> None:
    alice = await clients("alice")
    await alice.logout()
    assert not alice.logged_in
    assert not alice.connected
    with pytest.raises(NotLoggedIn):
        await alice.connect(timeout=5)
    with pytest.raises(NotLoggedIn, match="call login"):
        await alice.send(2, "after logout")


async def test_send_before_connect_says_so(clients: ClientFactory) -> None:
    alice = await clients("alice", connect=False)
    with pytest.raises(NotConnected, match="call connect"):
        await alice.send(2, "too early")


async def test_second_connection_replaces_first(
    server: ServerProcess, clients: ClientFactory
) -> None:
    store = MemoryStateStore(ClientState())
    first = await clients("alice", store=store)
    second = Client(server.base_url, state=store)
    try:
        await second.connect(timeout=10)
        with pytest.raises(SessionEnded) as info:
            async with asyncio.timeout(10):
                await first.next_message()
        assert info.value.code is ErrorCode.SESSION_REPLACED
        await asyncio.sleep(0.5)
        assert second.connected
    finally:
        await second.close()


async def test_revoked_token_fails_connect(
    server: ServerProcess, clients: ClientFactory
) -> None:
    store = MemoryStateStore(ClientState())
    alice = await clients("alice", store=store, connect=False)
    stale = store.load()
    await alice.logout()
    store.save(stale)
    client = Client(server.base_url, state=store)
    try:
        with pytest.raises(SessionEnded) as info:
            await client.connect(timeout=10)
        assert info.value.code is ErrorCode.UNAUTHORIZED
    finally:
        await client.close()


# Server restarts.


async def test_reconnect_after_server_crash(
    server: ServerProcess, clients: ClientFactory
) -> None:
    alice = await clients("alice")
    bob = await clients("bob", transport="ws")
    await alice.send("bob", "before")
    await receive(bob, 1)

    server.kill()
    sending = asyncio.create_task(alice.send("bob", "during the outage"))
    await asyncio.sleep(0.5)
    assert not sending.done()
    server.start()

    sent = await asyncio.wait_for(sending, 20)
    (received,) = await receive(bob, 1, within=20)
    assert received.id == sent.id
    assert received.text == "during the outage"
    assert alice.connected


async def test_large_outbox_is_resent_over_websocket(
    server: ServerProcess, clients: ClientFactory
) -> None:
    alice = await clients("alice", transport="ws")
    bob = await clients("bob")
    server.kill()
    # Ten messages of 15 KiB wait in the outbox: 150 KiB, more than one
    # WebSocket message of the 64 KiB frame limit may carry.
    texts = [f"{n}:" + "x" * 15_000 for n in range(10)]
    sending = [asyncio.create_task(alice.send(bob.user_id, text)) for text in texts]
    await asyncio.sleep(0.5)
    server.start()

    sent = await asyncio.wait_for(asyncio.gather(*sending), 30)
    received = await receive(bob, len(texts), within=30)
    assert [m.text for m in received] == texts
    assert [m.id for m in received] == [s.id for s in sent]


async def test_drain_moves_clients_to_restarted_server(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        env={"SWITCHBOARD_DRAIN_WINDOW": "1"},
    )
    server.start()
    clients: list[Client] = []
    try:
        for name in ("alice", "bob"):
            client = Client(
                server.base_url,
                options=ClientOptions(backoff_base=0.05, backoff_cap=0.5),
            )
            clients.append(client)
            await client.create_account(name, password_of(name))
            await client.login(name, password_of(name), device="d1")
            await client.connect(timeout=10)
        alice, bob = clients

        assert server.terminate() == 0
        server.start()
        sent = await asyncio.wait_for(alice.send("bob", "after the drain"), 20)
        (received,) = await receive(bob, 1, within=20)
        assert received.id == sent.id
    finally:
        for client in clients:
            await client.close()
        server.terminate()
