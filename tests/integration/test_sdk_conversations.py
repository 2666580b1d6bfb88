"""The SDK against a real server: conversation lists, reads, recall, edit,
delete and several devices of one user."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

from switchboard.client import (
    ChangeRejected,
    Client,
    ClientState,
    ConversationRead,
    Event,
    MemoryStateStore,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageRecalled,
    ReadReceipt,
    SessionEnded,
)
from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.integration.conftest import ClientFactory, password_of
from tests.support.rawclient import RawClient
from tests.support.server import ServerProcess


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``condition``, which a client's background task makes true."""
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.02)


E = TypeVar("E", bound=Event)


async def next_of(client: Client, kind: type[E], within: float = 10.0) -> E:
    """Return the next event of ``kind``, passing over other events."""
    async with asyncio.timeout(within):
        while True:
            event = await client.next_event()
            if isinstance(event, kind):
                return event


def unread_with(client: Client, peer: Client) -> int | None:
    conversation = client.conversation(peer.user_id)
    return None if conversation is None else conversation.unread


# Conversation lists and unread counts.


async def test_unread_exact_across_two_devices(clients: ClientFactory) -> None:
    alice = await clients("alice")
    phone = await clients("bob", "phone")
    laptop_store = MemoryStateStore(ClientState())
    laptop = await clients("bob", "laptop", store=laptop_store)
    for number in range(3):
        await alice.send("bob", f"message {number}")

    # Both devices count the three messages; Bob's reply counts for Alice.
    for device in (phone, laptop):
        await wait_until(lambda d=device: unread_with(d, alice) == 3)  # type: ignore[misc]
    await phone.send("alice", "one moment")
    await wait_until(lambda: unread_with(alice, phone) == 1)
    await asyncio.sleep(0.3)
    assert unread_with(laptop, alice) == 3

    # Reading on the phone clears the laptop's count too.
    read = await phone.mark_read("alice")
    assert (read.changed, read.unread) == (True, 0)
    await wait_until(lambda: unread_with(laptop, alice) == 0)
    assert laptop.total_unread == 0

    # The laptop goes offline; two more messages come and the phone reads one.
    await laptop.close()
    first = await alice.send("bob", "are you there?")
    await alice.send("bob", "hello?")
    partial = await phone.mark_read(alice.user_id, up_to=first.id)
    assert partial.unread == 1
    laptop = await clients("bob", "laptop", store=laptop_store)
    await wait_until(lambda: unread_with(laptop, alice) == 1)
    listed = await laptop.conversations()
    [conversation] = listed.conversations
    assert (conversation.name, conversation.unread) == ("alice", 1)
    assert listed.total_unread == 1


async def test_conversations_without_connect(clients: ClientFactory) -> None:
    bob = await clients("bob", connect=False)
    alice = await clients("alice")
    carol = await clients("carol")
    await alice.send("bob", "from alice")
    await carol.send("bob", "from carol")

    page = await bob.conversations(limit=1)
    older = await bob.conversations(limit=1, before=page.conversations[0].last.id)  # type: ignore[union-attr]

    assert [c.name for c in page.conversations] == ["carol"]
    assert page.has_more is True
    assert page.total_unread == 2
    assert [c.name for c in older.conversations] == ["alice"]
    last = older.conversations[0].last
    assert last is not None
    assert (last.text, last.sender_name, last.outgoing) == (
        "from alice",
        "alice",
        False,
    )
    assert [c.name for c in bob.cached_conversations()] == ["carol", "alice"]


async def test_read_receipt_reaches_sender(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    sent = await alice.send("bob", "did you see this?")
    await next_of(bob, Message)

    await bob.mark_read("alice")

    receipt = await next_of(alice, ReadReceipt)
    assert (receipt.reader_id, receipt.group_id) == (bob.user_id, 0)
    assert receipt.message_id == sent.id
    conversation = alice.conversation(bob.user_id)
    assert conversation is not None
    assert conversation.peer_read_id == sent.id
    read = await next_of(bob, ConversationRead)
    assert (read.peer_id, read.read_id, read.unread) == (alice.user_id, sent.id, 0)


async def test_read_over_http(clients: ClientFactory) -> None:
    bob = await clients("bob", connect=False)
    alice = await clients("alice")
    sent = await alice.send("bob", "hi")

    read = await bob.mark_read("alice", up_to=sent.id)

    assert (read.changed, read.unread, read.read_id) == (True, 0, sent.id)
    assert read.seq == 2
    again = await bob.mark_read(alice.user_id)
    assert again.changed is False
    with pytest.raises(ChangeRejected) as info:
        await bob.mark_read(group=424242)
    assert info.value.code is ErrorCode.GROUP_NOT_FOUND


# Recall, edit and delete.


async def test_recall_reaches_offline_device(clients: ClientFactory) -> None:
    alice = await clients("alice")
    phone = await clients("bob", "phone")
    laptop_store = MemoryStateStore(ClientState())
    laptop = await clients("bob", "laptop", store=laptop_store)
    sent = await alice.send("bob", "wrong chat")
    assert (await next_of(laptop, Message)).id == sent.id
    await laptop.flush()
    await laptop.close()

    recalled = await alice.recall(sent.id)

    assert recalled.changed is True
    live = await next_of(phone, MessageRecalled)
    assert (live.message_id, live.sender_id) == (sent.id, alice.user_id)
    laptop = await clients("bob", "laptop", store=laptop_store)
    caught_up = await next_of(laptop, MessageRecalled)
    assert caught_up.message_id == sent.id
    assert caught_up.peer_id == alice.user_id
    await wait_until(lambda: unread_with(laptop, alice) == 0)
    conversation = laptop.conversation(alice.user_id)
    assert conversation is not None
    assert conversation.last is not None
    assert conversation.last.recalled is True
    history = await laptop.history("alice")
    assert [(m.id, m.recalled, m.body) for m in history.messages] == [
        (sent.id, True, b"")
    ]


async def test_fresh_device_sees_recalled_message(clients: ClientFactory) -> None:
    await clients("bob", connect=False)
    alice = await clients("alice")
    sent = await alice.send("bob", "secret")
    await alice.recall(sent.id)

    bob = await clients("bob", "new-device")

    original = await next_of(bob, Message)
    assert (original.id, original.recalled, original.body) == (sent.id, True, b"")
    assert (await next_of(bob, MessageRecalled)).message_id == sent.id


async def test_edit_and_delete(clients: ClientFactory) -> None:
    alice = await clients("alice")
    phone = await clients("bob", "phone")
    laptop = await clients("bob", "laptop")
    sent = await alice.send("bob", "see you at 5")

    edited = await alice.edit(sent.id, "see you at 6")

    assert edited.changed is True
    for device in (phone, laptop):
        event = await next_of(device, MessageEdited)
        assert (event.message_id, event.text) == (sent.id, "see you at 6")
        assert event.edited_at == edited.changed_at
    deleted = await phone.delete(sent.id)
    assert deleted.changed is True
    event = await next_of(laptop, MessageDeleted)
    assert (event.message_id, event.peer_id) == (sent.id, alice.user_id)
    history = await alice.history("bob")
    assert [m.text for m in history.messages] == ["see you at 6"]
    assert history.messages[0].edited_at == edited.changed_at
    assert (await phone.history("alice")).messages == []


async def test_change_errors(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    offline_bob = await clients("bob", "web", connect=False)
    sent = await alice.send("bob", "hi")

    with pytest.raises(ChangeRejected) as not_sender:
        await bob.recall(sent.id)
    with pytest.raises(ChangeRejected) as over_http:
        await offline_bob.edit(sent.id, "mine now")
    with pytest.raises(ChangeRejected) as missing:
        await alice.delete(987654)

    assert not_sender.value.code is ErrorCode.NOT_SENDER
    assert over_http.value.code is ErrorCode.NOT_SENDER
    assert "only the sender" in over_http.value.reason
    assert missing.value.code is ErrorCode.MESSAGE_NOT_FOUND


def post_to_new_group(server: ServerProcess) -> tuple[int, int]:
    """Create the group "trip" of alice, bob and carol, and post one message
    as alice from a raw connection; return the group and message ids."""
    token = httpx.post(
        server.base_url + "/v1/sessions",
        json={"name": "alice", "password": password_of("alice"), "device": "raw"},
    ).json()["token"]
    response = httpx.post(
        server.base_url + "/v1/groups",
        json={"name": "trip", "members": ["bob", "carol"]},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    group_id: int = response.json()["id"]
    raw = RawClient(server.tcp_address)
    raw.connect(token, device="raw")
    raw.send(pb.Send(group=group_id, client_id=1, body=b"pack light"))
    ack = raw.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    raw.close()
    return group_id, ack.id


async def test_group_read_counts(clients: ClientFactory, server: ServerProcess) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    carol = await clients("carol")
    group_id, message_id = await asyncio.to_thread(post_to_new_group, server)
    await wait_until(lambda: bob.conversation(group=group_id) is not None)

    await bob.mark_read(group=group_id)

    receipt = await next_of(alice, ReadReceipt)
    assert (receipt.reader_id, receipt.group_id) == (bob.user_id, group_id)
    [count] = await carol.read_counts(group_id, [message_id])
    assert (count.message_id, count.read, count.members) == (message_id, 1, 2)
    await wait_until(lambda: carol.conversation(group=group_id) is not None)
    conversation = carol.conversation(group=group_id)
    assert conversation is not None
    assert (conversation.name, conversation.unread) == ("trip", 1)


# Several devices of one user.


async def test_every_device_gets_every_message(clients: ClientFactory) -> None:
    alice = await clients("alice")
    devices = {
        "phone": await clients("bob", "phone", platform="android"),
        "web": await clients("bob", "web", platform="web"),
        "desktop": await clients("bob", "desktop", platform="desktop"),
        "cli": await clients("bob", "cli"),
    }

    sent = await alice.send("bob", "to every device")
    reply = await devices["phone"].send("alice", "from the phone")

    for name, device in devices.items():
        incoming = await next_of(device, Message)
        assert (incoming.id, incoming.outgoing) == (sent.id, False), name
        own = await next_of(device, Message)
        assert (own.id, own.seq, own.outgoing) == (reply.id, reply.seq, True), name
        assert own.text == "from the phone"


async def test_second_mobile_ends_first_session(clients: ClientFactory) -> None:
    phone = await clients("bob", "phone", platform="android")

    tablet = await clients("bob", "tablet", platform="ios")

    with pytest.raises(SessionEnded) as info:
        await next_of(phone, Message)
    assert info.value.code is ErrorCode.SESSION_REPLACED
    assert "'tablet'" in info.value.reason
    assert tablet.connected


async def test_unread_three_devices_out_of_order(
    clients: ClientFactory,
) -> None:
    alice, carol = await clients("alice"), await clients("carol")
    stores = {
        name: MemoryStateStore(ClientState()) for name in ("phone", "tablet", "pc")
    }
    bob = {
        name: await clients("bob", name, store=store) for name, store in stores.items()
    }
    sent = [await alice.send("bob", f"a{number}") for number in range(6)]
    for number in range(3):
        await carol.send("bob", f"c{number}")
    for device in bob.values():
        await wait_until(lambda d=device: d.total_unread == 9)  # type: ignore[misc]

    async def reconnect(name: str) -> None:
        await bob[name].close()
        bob[name] = await clients("bob", name, store=stores[name])

    # The tablet reads Alice's first four; the phone then reads up to the
    # second, behind it, which moves nothing back.
    assert (await bob["tablet"].mark_read(alice.user_id, up_to=sent[3].id)).unread == 2
    assert (await bob["phone"].mark_read(alice.user_id, up_to=sent[1].id)).unread == 2
    # The PC reconnects in between, then reads Carol's conversation.
    await reconnect("pc")
    assert (await bob["pc"].mark_read(carol.user_id)).unread == 0
    # The phone is offline while Alice sends one more and the tablet,
    # reconnected, reads one further.
    await bob["phone"].close()
    await alice.send("bob", "a6")
    await reconnect("tablet")
    await wait_until(lambda: unread_with(bob["tablet"], alice) == 3)
    assert (await bob["tablet"].mark_read(alice.user_id, up_to=sent[4].id)).unread == 2
    bob["phone"] = await clients("bob", "phone", store=stores["phone"])

    for device in bob.values():
        await wait_until(
            lambda d=device: (
                (  # type: ignore[misc]
                    unread_with(d, alice),
                    unread_with(d, carol),
                    d.total_unread,
                )
                == (2, 0, 2)
            )
        )
        listed = await device.conversations()
        assert {c.name: c.unread for c in listed.conversations} == {
            "alice": 2,
            "carol": 0,
        }
        assert listed.total_unread == 2
