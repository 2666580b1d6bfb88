"""Conversation peers and last-seen times, for every Store, and the upgrade."""

from __future__ import annotations

import pathlib
import sqlite3

from switchboard.ids import UserId
from switchboard.store.base import ConversationKey, Store
from switchboard.store.migrations import MIGRATIONS
from switchboard.store.sqlite import SqliteStore
from tests.store.test_store_conformance import send
from tests.store.test_store_groups import LIMIT, make_users


async def test_one_way_messages_make_no_peers(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    await send(store, alice, bob, 1)
    await send(store, alice, bob, 2)

    assert await store.peers_among(alice.id, [bob.id, carol.id]) == set()
    assert await store.peers_among(bob.id, [alice.id]) == set()


async def test_reply_makes_peers_both_ways(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    await send(store, alice, bob, 1)
    await send(store, bob, alice, 1)
    await send(store, carol, carol, 1)

    assert await store.peers_among(alice.id, [bob.id, carol.id]) == {bob.id}
    assert await store.peers_among(bob.id, [alice.id, bob.id]) == {alice.id}
    assert await store.peers_among(carol.id, [carol.id]) == set()


async def test_group_members_are_peers_while_members(store: Store) -> None:
    alice, bob, carol, dave = await make_users(store, "alice", "bob", "carol", "dave")
    change = await store.create_group(
        "g", alice.id, [bob.id, carol.id], 1, max_members=LIMIT
    )
    group_id = change.group.id

    assert await store.peers_among(bob.id, [alice.id, carol.id, dave.id]) == {
        alice.id,
        carol.id,
    }
    await store.remove_member(group_id, carol.id)
    assert await store.peers_among(bob.id, [alice.id, carol.id]) == {alice.id}
    assert await store.peers_among(carol.id, [alice.id, bob.id]) == set()


async def test_peers_among_many_candidates(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob, 1)
    await send(store, bob, alice, 1)
    candidates = [UserId(i) for i in range(10_000, 11_200)] + [bob.id, UserId(2**70)]

    assert await store.peers_among(alice.id, candidates) == {bob.id}
    assert await store.peers_among(alice.id, []) == set()


async def test_last_seen_only_moves_forward(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    await store.set_last_seen(alice.id, 5_000)
    await store.set_last_seen(alice.id, 4_000)
    await store.set_last_seen(bob.id, 7_000)

    assert await store.last_seen([alice.id, bob.id, carol.id]) == {
        alice.id: 5_000,
        bob.id: 7_000,
    }
    assert await store.last_seen([]) == {}


async def test_upgrade_finds_existing_peers(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:3]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        "INSERT INTO users VALUES (1, 'alice', 'h', 1), (2, 'bob', 'h', 1),"
        " (3, 'carol', 'h', 1)"
    )
    conn.execute(
        "INSERT INTO messages (id, sender, sender_device, client_id, recipient,"
        " conv_lo, conv_hi, content_type, body, sent_at, sender_seq, recipient_seq)"
        " VALUES (1, 1, 'p', 1, 2, 1, 2, 0, x'68', 5, 1, 1),"
        " (2, 2, 'p', 1, 1, 1, 2, 0, x'68', 6, 2, 2),"
        " (3, 3, 'p', 1, 1, 1, 3, 0, x'68', 7, 1, 3)"
    )
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        peers = await store.peers_among(UserId(1), [UserId(2), UserId(3)])
    finally:
        await store.close()

    assert peers == {UserId(2)}


async def test_read_receipt_makes_no_peers(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob, 1)
    await store.mark_read(bob.id, ConversationKey(peer=alice.id), None, 10)

    assert await store.peers_among(alice.id, [bob.id]) == set()
    assert await store.peers_among(bob.id, [alice.id]) == set()
