"""Adding a database to a PostgresStore, as docs/deploy.md describes it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from switchboard.ids import ClientMessageId, DeviceId, Seq, UserId
from switchboard.store.base import ConversationKey, InboxEntry, Store
from switchboard.store.postgres import PostgresStore
from switchboard.store.shards import ShardMap
from tests.support.postgres import (
    ROOT,
    ScratchDatabases,
    interleaved_shard_map,
    scratch_databases,
)

PHONE = DeviceId("phone")


@pytest.fixture(scope="module")
def databases() -> Iterator[ScratchDatabases]:
    with scratch_databases(2) as created:
        yield created


@pytest.fixture
def clean(databases: ScratchDatabases) -> ScratchDatabases:
    databases.reset()
    return databases


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard.store.postgres_admin", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


async def read_whole_inbox(store: Store, user_id: UserId) -> list[InboxEntry]:
    page = await store.read_inbox(user_id, Seq(0), 1000)
    assert page.has_more is False
    return page.entries


async def send(store: Store, sender: UserId, recipient: UserId, client_id: int) -> None:
    await store.append_message(
        sender, PHONE, ClientMessageId(client_id), recipient, 1, b"x", 0
    )


async def test_add_database_keeps_data(clean: ScratchDatabases) -> None:
    first, second = clean.dsns

    # Start on one database, with users, messages and a group.
    store = PostgresStore(ShardMap.even([first]), pool_size=2)
    await store.open()
    users = [(await store.create_user(f"u{i}", "hash", 0)).id for i in range(6)]
    for client_id in range(1, 31):
        await send(store, users[client_id % 6], users[(client_id * 5) % 6], client_id)
    change = await store.create_group("g", users[0], users[1:], 0, max_members=9)
    await store.append_group_message(
        users[1], PHONE, ClientMessageId(100), change.group.id, 1, b"hi", 0
    )
    await store.mark_read(users[2], ConversationKey(group=change.group.id), None, 0)
    await store.append_message(
        users[1], PHONE, ClientMessageId(200), users[3], 0, b"moving day", 0
    )
    for user in users:
        await store.set_last_seen(user, 1_000 + user)
    before = {user: await read_whole_inbox(store, user) for user in users}
    lists = {user: await store.list_conversations(user, None, 100) for user in users}
    peers = {user: await store.peers_among(user, users) for user in users}
    assert peers[users[1]] == set(users) - {users[1]}
    await store.close()

    # Add a second database and move the odd shards to it.
    prepared = admin("prepare", second, "1")
    assert prepared.returncode == 0, prepared.stderr
    odd_shards = ",".join(str(shard) for shard in range(1, 256, 2))
    moved = admin("move", first, second, odd_shards, "--directory", first)
    assert moved.returncode == 0, moved.stderr

    store = PostgresStore(interleaved_shard_map(clean.dsns), pool_size=2)
    await store.open()
    try:
        for user in users:
            assert await read_whole_inbox(store, user) == before[user]
            assert await store.list_conversations(user, None, 100) == lists[user]
        assert lists[users[2]].conversations[0].unread == 0
        assert lists[users[3]].conversations[0].unread == 1
        assert len(await store.list_members(change.group.id)) == 6
        for user in users:
            assert await store.peers_among(user, users) == peers[user]
        assert await store.last_seen(users) == {user: 1_000 + user for user in users}
        for user in (users[1], users[3]):
            found, _ = await store.search_messages(user, ["moving"], None, 10)
            assert [entry.message.body for entry in found] == [b"moving day"]
        assert [g.id for g in await store.groups_of(users[3])] == [change.group.id]

        # Sequences continue in both databases, and resends are still found.
        odd, even = users[0], users[1]
        assert odd % 2 == 1
        heads = (await store.head_seq(odd), await store.head_seq(even))
        result = await store.append_message(
            odd, PHONE, ClientMessageId(500), even, 1, b"after", 0
        )
        assert (result.sender_seq, result.recipient_seq) == (heads[0] + 1, heads[1] + 1)
        repeat = await store.append_message(
            users[1], PHONE, ClientMessageId(100), users[2], 1, b"again", 0
        )
        assert repeat.duplicate is True
    finally:
        await store.close()


def test_move_invalid_requests_fail(clean: ScratchDatabases) -> None:
    first, second = clean.dsns
    assert admin("prepare", first, "0").returncode == 0
    assert admin("prepare", second, "1").returncode == 0

    same = admin("move", first, first, "1", "--directory", first)
    bad_shard = admin("move", first, second, "256", "--directory", first)
    taken = admin("prepare", second, "2")

    assert same.returncode == 1
    assert "both database 0" in same.stderr
    assert bad_shard.returncode == 1
    assert "invalid shard 256" in bad_shard.stderr
    assert taken.returncode == 1
    assert "set up as database 1" in taken.stderr
