"""Large groups (fan-out on read) through the SDK against a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from switchboard.bench.accounts import Credential, seed_store
from switchboard.client import (
    NOTICE,
    Client,
    ClientOptions,
    ClientState,
    ConversationRead,
    MemoryStateStore,
    Message,
    MessageEdited,
    MessageRecalled,
)
from tests.integration.conftest import ClientFactory, password_of
from tests.support.rawclient import create_user
from tests.support.server import ServerProcess

CROWD = 2000
"""Members of the group in the burst test."""
ONLINE = 200
"""Members online during the burst, half on TCP and half on WebSocket."""
OFFLINE_SAMPLE = 20
"""Members that connect after the burst and catch up by sync."""
BURST = 100
"""Messages sent at once."""
SMALL_THRESHOLD = "3"
"""large_group_threshold of the other tests: groups of 4 or more are large."""


def client_of(
    server: ServerProcess,
    credential: Credential,
    http: httpx.AsyncBaseTransport | None = None,
) -> Client:
    """Return a client logged in with a seeded token.

    Sharing one HTTP transport between many clients saves building an SSL
    context for each (about 0.1 s of CPU apiece).
    """
    state = ClientState(
        token=credential.token,
        user_id=credential.user_id,
        name=credential.name,
        device=credential.device,
    )
    return Client(
        server.base_url,
        state=MemoryStateStore(state),
        options=ClientOptions(backoff_base=0.05, backoff_cap=0.5),
        http_transport=http,
    )


async def next_messages(client: Client, count: int, within: float) -> list[Message]:
    received = []
    async with asyncio.timeout(within):
        for _ in range(count):
            received.append(await client.next_message())
    return received


async def assert_quiet(client: Client, within: float = 0.5) -> None:
    """Assert that no further message arrives within ``within`` seconds."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(within):
            extra = await client.next_message()
            print("unexpected message:", extra)


def texts(messages: list[Message]) -> list[str | None]:
    return [m.text for m in messages if m.content_type != NOTICE]


def events(messages: list[Message]) -> list[str]:
    return [m.notice.event for m in messages if m.notice is not None]


@pytest.fixture
async def crowd(
    tmp_path: Path,
) -> AsyncIterator[tuple[ServerProcess, list[Credential]]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    credentials = await seed_store(data_dir, CROWD, prefix="member")
    server = ServerProcess(data_dir, tmp_path / "server.log")
    server.start()
    yield server, credentials
    server.terminate()
    print("server log tail:\n" + server.log()[-4000:])


async def test_burst_reaches_crowd_once_in_order(
    crowd: tuple[ServerProcess, list[Credential]],
) -> None:
    server, credentials = crowd
    started = time.monotonic()
    names = [c.name for c in credentials]
    http = httpx.AsyncHTTPTransport()
    owner = client_of(server, credentials[0], http)
    online = [client_of(server, c, http) for c in credentials[1 : ONLINE + 1]]
    late = [client_of(server, c, http) for c in credentials[-OFFLINE_SAMPLE:]]
    try:
        await owner.connect("tcp", timeout=30)
        group = await owner.create_group("crowd", names[1:1000])
        await owner.add_group_members(group.id, names[1000:])
        assert len(await owner.group_members(group.id)) == CROWD

        await asyncio.gather(
            *(
                client.connect("tcp" if index % 2 else "ws", timeout=30)
                for index, client in enumerate(online)
            )
        )
        # The creation and the addition, caught up by sync on connect.
        for client in online:
            notices = await next_messages(client, 2, within=30)
            assert events(notices) == ["group_created", "member_added"]

        bodies = [f"burst {n}" for n in range(BURST)]
        await asyncio.gather(*(owner.send_group(group.id, body) for body in bodies))

        async def receive(client: Client) -> list[Message]:
            return await next_messages(client, BURST, within=40)

        received = await asyncio.gather(*(receive(client) for client in online))
        for client, messages in zip(online, received, strict=True):
            assert texts(messages) == bodies, client.name
            seqs = [m.group_seq for m in messages]
            assert seqs == list(range(3, 3 + BURST)), client.name
            assert all(m.seq == 0 for m in messages)
        await asyncio.gather(*(assert_quiet(client, 0.3) for client in online))

        # Members that were offline get everything on sync. They joined with
        # the second batch, so their timeline starts at its notice.
        await asyncio.gather(*(client.connect("tcp", timeout=30) for client in late))
        for client in late:
            messages = await next_messages(client, 1 + BURST, within=30)
            assert events(messages) == ["member_added"]
            assert texts(messages) == bodies
            assert messages[-1].group_seq == 2 + BURST
        elapsed = time.monotonic() - started
        print(f"burst test took {elapsed:.1f} s")
    finally:
        await asyncio.gather(
            owner.close(), *(c.close() for c in online), *(c.close() for c in late)
        )


def _server(tmp_path: Path, **env: str) -> Iterator[ServerProcess]:
    settings = {"SWITCHBOARD_LARGE_GROUP_THRESHOLD": SMALL_THRESHOLD, **env}
    process = ServerProcess(tmp_path / "data", tmp_path / "server.log", settings)
    process.start()
    yield process
    process.terminate()
    print("server log tail:\n" + process.log()[-4000:])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose groups of more than 3 members are large."""
    yield from _server(tmp_path)


async def test_removed_member_gets_nothing_after(clients: ClientFactory) -> None:
    alice = await clients("alice")
    await clients("bob")
    await clients("carol")
    dave = await clients("dave", transport="ws")
    dave_tablet = await clients("dave", device="tablet", connect=False)
    group = await alice.create_group("large", ["bob", "carol", "dave"])
    await alice.send_group(group.id, "before")
    assert texts(await next_messages(dave, 2, within=10)) == ["before"]

    await alice.remove_group_member(group.id, "dave")
    (removal,) = await next_messages(dave, 1, within=10)
    assert events([removal]) == ["member_removed"]
    await alice.send_group(group.id, "after")
    await assert_quiet(dave, 1.0)

    # The other device syncs up to the removal, not past it.
    await dave_tablet.connect("tcp", timeout=10)
    synced = await next_messages(dave_tablet, 3, within=10)
    assert events(synced) == ["group_created", "member_removed"]
    assert texts(synced) == ["before"]
    await assert_quiet(dave_tablet, 1.0)
    # Reconnecting does not open more either.
    await dave.close()
    await dave_tablet.close()


async def test_new_member_sees_from_join(clients: ClientFactory) -> None:
    alice = await clients("alice")
    for name in ("bob", "carol", "dave"):
        await clients(name)
    eve = await clients("eve")
    group = await alice.create_group("large", ["bob", "carol", "dave"])
    await alice.send_group(group.id, "before")

    await alice.add_group_members(group.id, ["eve"])
    await alice.send_group(group.id, "after")

    messages = await next_messages(eve, 2, within=10)
    assert events(messages) == ["member_added"]
    assert texts(messages) == ["after"]
    await assert_quiet(eve, 0.5)
    history = await eve.group_history(group.id)
    history_texts = [m.text for m in history.messages]
    assert "after" in history_texts
    assert "before" not in history_texts
    assert not history.has_more
    earlier = await alice.group_history(group.id)
    assert "before" in [m.text for m in earlier.messages]


async def test_large_group_unread_exact(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    carol = await clients("carol")
    carol_laptop = await clients("carol", device="laptop")
    await clients("dave")
    group = await alice.create_group("large", ["bob", "carol", "dave"])
    for n in range(3):
        await bob.send_group(group.id, f"m{n}")
    await carol.send_group(group.id, "mine")
    await next_messages(carol, 4, within=10)

    page = await carol.conversations()
    (listed,) = [c for c in page.conversations if c.group_id == group.id]
    assert listed.unread == 3  # bob's messages; the notice and carol's own do not count
    assert listed.name == "large"
    assert listed.last is not None
    assert listed.last.text == "mine"
    assert page.total_unread == 3

    changed = await carol.mark_read(group=group.id)
    assert changed.unread == 0
    assert changed.changed
    assert changed.read_id == listed.last.id

    # The read entry reaches carol's other device in its inbox.
    async with asyncio.timeout(10):
        while True:
            event = await carol_laptop.next_event()
            if isinstance(event, ConversationRead):
                break
    assert (event.group_id, event.unread) == (group.id, 0)
    assert event.read_id == listed.last.id
    cached = carol_laptop.conversation(group=group.id)
    assert cached is not None
    assert cached.unread == 0
    await bob.send_group(group.id, "one more")
    page = await carol.conversations()
    (listed,) = [c for c in page.conversations if c.group_id == group.id]
    assert listed.unread == 1
    assert listed.last is not None
    assert listed.last.text == "one more"


async def test_small_group_grows_into_large(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    await clients("carol")
    await clients("dave")
    group = await alice.create_group("growing", ["bob", "carol"])
    await alice.send_group(group.id, "small")
    small = await next_messages(bob, 2, within=10)
    assert texts(small) == ["small"]
    assert all(m.seq > 0 for m in small)

    await alice.add_group_members(group.id, ["dave"])
    assert (await alice.group(group.id)).id == group.id
    await alice.send_group(group.id, "large")
    large = await next_messages(bob, 2, within=10)
    assert events(large) == ["member_added"]
    assert texts(large) == ["large"]
    assert [m.group_seq for m in large] == [1, 2]
    assert [m.seq for m in large] == [0, 0]


async def test_reconnect_hands_out_each_once(clients: ClientFactory) -> None:
    alice = await clients("alice")
    for name in ("carol", "dave"):
        await clients(name)
    bob = await clients("bob")
    group = await alice.create_group("large", ["bob", "carol", "dave"])
    await next_messages(bob, 1, within=10)

    # Messages keep arriving while bob's connection drops and comes back,
    # so pushes and sync pages overlap.
    async def send_all() -> None:
        for n in range(40):
            await alice.send_group(group.id, f"n{n}")
            await asyncio.sleep(0.005)

    sending = asyncio.create_task(send_all())
    await asyncio.sleep(0.05)
    bob.reconnect()
    await sending
    messages = await next_messages(bob, 40, within=20)
    assert texts(messages) == [f"n{n}" for n in range(40)]
    await assert_quiet(bob, 0.5)


@pytest.mark.parametrize("history", ["2"])
async def test_history_on_join_setting(tmp_path: Path, history: str) -> None:
    servers = _server(tmp_path, SWITCHBOARD_GROUP_HISTORY_ON_JOIN=history)
    server = next(servers)
    made: list[Client] = []
    try:

        async def make(name: str) -> Client:
            client = Client(server.base_url, state=MemoryStateStore(ClientState()))
            made.append(client)
            await client.create_account(name, password_of(name))
            await client.login(name, password_of(name))
            await client.connect("tcp", timeout=10)
            return client

        alice = await make("alice")
        for name in ("bob", "carol", "dave"):
            await make(name)
        eve = await make("eve")
        group = await alice.create_group("large", ["bob", "carol", "dave"])
        for n in range(3):
            await alice.send_group(group.id, f"old {n}")

        await alice.add_group_members(group.id, ["eve"])

        messages = await next_messages(eve, 3, within=10)
        assert texts(messages) == ["old 1", "old 2"]
        assert events(messages) == ["member_added"]
        await assert_quiet(eve, 0.5)
        history = await eve.group_history(group.id)
        assert texts(history.messages) == ["old 2", "old 1"]
    finally:
        for client in made:
            await client.close()
        next(servers, None)


def test_http_send_to_large_group(server: ServerProcess) -> None:
    users = [
        create_user(server.base_url, name) for name in ("kim", "lee", "max", "ned")
    ]
    owner = {"Authorization": f"Bearer {users[0][1]}"}
    response = httpx.post(
        server.base_url + "/v1/groups",
        json={"name": "large", "members": ["lee", "max", "ned"]},
        headers=owner,
    )
    assert response.status_code == 201, response.text
    group = response.json()["id"]

    body = {"group": group, "text": "over http", "client_id": 1}
    first = httpx.post(server.base_url + "/v1/messages", json=body, headers=owner)
    again = httpx.post(server.base_url + "/v1/messages", json=body, headers=owner)

    assert first.status_code == 201, first.text
    sent = first.json()
    assert (sent["seq"], sent["group_seq"], sent["duplicate"]) == (0, 2, False)
    assert again.json()["group_seq"] == 2
    assert again.json()["duplicate"]


async def test_recall_and_edit_in_large_group(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    for name in ("carol", "dave"):
        await clients(name)
    group = await alice.create_group("large", ["bob", "carol", "dave"])
    first = await alice.send_group(group.id, "typo")
    second = await alice.send_group(group.id, "oops")
    await next_messages(bob, 3, within=10)

    edited = await alice.edit(first.id, "fixed")
    recalled = await alice.recall(second.id)

    assert edited.changed
    assert recalled.changed
    changes = []
    async with asyncio.timeout(10):
        while len(changes) < 2:
            event = await bob.next_event()
            if isinstance(event, (MessageEdited, MessageRecalled)):
                changes.append(event)
    edit, recall = changes
    assert isinstance(edit, MessageEdited)
    assert (edit.message_id, edit.body, edit.group_id) == (first.id, b"fixed", group.id)
    assert isinstance(recall, MessageRecalled)
    assert recall.message_id == second.id
    history = await bob.group_history(group.id)
    by_id = {m.id: m for m in history.messages}
    assert by_id[first.id].text == "fixed"
    assert by_id[second.id].recalled

    # Deleting for oneself hides the message from bob only.
    deleted = await bob.delete(first.id)
    assert deleted.changed
    assert deleted.seq > 0
    after = await bob.group_history(group.id)
    assert first.id not in [m.id for m in after.messages]
    theirs = await alice.group_history(group.id)
    assert first.id in [m.id for m in theirs.messages]
