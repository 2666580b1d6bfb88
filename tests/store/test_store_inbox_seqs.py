"""inbox_seqs: where messages sit in one user's inbox, for every Store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from switchboard.ids import ClientMessageId, MessageId, Seq
from switchboard.store.base import Store
from switchboard.store.sqlite import SqliteStore
from tests.store.test_store_conformance import PHONE, send
from tests.store.test_store_groups import make_group, make_users, post


async def test_one_to_one_seqs_differ_per_inbox(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    await send(store, carol, bob, 1)
    first = await send(store, alice, bob, 1)
    second = await send(store, bob, alice, 1)
    ids = [first.message.id, second.message.id]

    assert await store.inbox_seqs(alice.id, ids) == {
        first.message.id: Seq(1),
        second.message.id: Seq(2),
    }
    assert await store.inbox_seqs(bob.id, ids) == {
        first.message.id: Seq(2),
        second.message.id: Seq(3),
    }


async def test_messages_outside_the_inbox_are_left_out(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    theirs = await send(store, bob, carol, 1)
    mine = await send(store, alice, alice, 1)
    ids = [theirs.message.id, mine.message.id, MessageId(10**6), MessageId(2**70)]

    assert await store.inbox_seqs(alice.id, ids) == {mine.message.id: Seq(1)}
    assert await store.inbox_seqs(alice.id, []) == {}


async def test_group_message_seqs(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)
    result = await post(store, bob, group_id, 1)

    for member in (alice, bob):
        assert await store.inbox_seqs(member.id, [result.message.id]) == {
            result.message.id: result.seqs[member.id]
        }
    assert await store.inbox_seqs(carol.id, [result.message.id]) == {}


async def test_many_ids_in_one_call(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    ids = []
    for client_id in range(1, 1201):
        result = await store.append_message(
            alice.id, PHONE, ClientMessageId(client_id), bob.id, 0, b"x", 1
        )
        ids.append(result.message.id)

    seqs = await store.inbox_seqs(bob.id, ids)

    assert len(seqs) == 1200
    assert seqs[ids[-1]] == Seq(1200)


async def test_sqlite_lookup_uses_message_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "db")
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT message_id, seq FROM inbox"
        " WHERE user_id = ? AND message_id IN (?, ?)",
        (1, 2, 3),
    ).fetchall()
    conn.close()

    assert any("inbox_by_message" in row[-1] for row in plan), plan
