"""search_messages for every Store: matching, isolation, paging and sync."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest

from switchboard.ids import ClientMessageId, DeviceId, MessageId, UserId
from switchboard.store.base import Store, User
from switchboard.store.migrations import MIGRATIONS
from switchboard.store.sqlite import SqliteStore
from tests.store.test_store_groups import LIMIT, make_users

PHONE = DeviceId("phone")


async def say(
    store: Store, sender: User, recipient: User, text: str, content_type: int = 0
) -> MessageId:
    client_id = ClientMessageId(abs(hash((sender.id, text))) % 2**62 + 1)
    result = await store.append_message(
        sender.id, PHONE, client_id, recipient.id, content_type, text.encode(), 1
    )
    return result.message.id


async def texts(store: Store, user: User, *terms: str, **filters: object) -> list[str]:
    entries, _ = await store.search_messages(user.id, terms, None, 100, **filters)  # type: ignore[arg-type]
    return [entry.message.body.decode() for entry in entries]


async def test_words_match_by_prefix_case_and_accents(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await say(store, alice, bob, "Meet at the Café at noon")
    await say(store, bob, alice, "the cafeteria is closed")
    await say(store, bob, alice, "see you tomorrow")

    assert await texts(store, alice, "cafe") == [
        "the cafeteria is closed",
        "Meet at the Café at noon",
    ]
    assert await texts(store, bob, "CAFÉ", "noon") == ["Meet at the Café at noon"]
    assert await texts(store, bob, "tomorrow", "cafe") == []
    assert await texts(store, bob, 'quote"d') == []


async def test_other_inboxes_are_never_searched(store: Store) -> None:
    alice, bob, carol, dave = await make_users(store, "alice", "bob", "carol", "dave")
    await say(store, carol, dave, "the secret plan")
    await say(store, alice, bob, "no plan at all")
    change = await store.create_group("g", carol.id, [dave.id], 1, max_members=LIMIT)
    await store.append_group_message(
        carol.id, PHONE, ClientMessageId(99), change.group.id, 0, b"group plan", 2
    )

    assert await texts(store, alice, "plan") == ["no plan at all"]
    assert await texts(store, bob, "secret") == []
    assert await texts(store, dave, "plan") == ["group plan", "the secret plan"]


async def test_only_text_messages_are_searched(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await say(store, alice, bob, '{"media": "plan"}', content_type=1)
    await say(store, alice, bob, "plan", content_type=7)
    assert await texts(store, bob, "plan") == []


async def test_conversation_and_group_filters(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    await say(store, alice, bob, "lunch with bob")
    await say(store, alice, carol, "lunch with carol")
    change = await store.create_group("g", alice.id, [bob.id], 1, max_members=LIMIT)
    group_id = change.group.id
    await store.append_group_message(
        bob.id, PHONE, ClientMessageId(50), group_id, 0, b"lunch in the group", 2
    )

    assert await texts(store, alice, "lunch", peer_id=bob.id) == ["lunch with bob"]
    assert await texts(store, alice, "lunch", peer_id=carol.id) == ["lunch with carol"]
    assert await texts(store, alice, "lunch", group_id=group_id) == [
        "lunch in the group"
    ]
    assert len(await texts(store, alice, "lunch")) == 3


async def test_pages_newest_first_with_seq(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    ids = [await say(store, alice, bob, f"report number {n}") for n in range(5)]

    first, more = await store.search_messages(bob.id, ["report"], None, 2)
    assert [e.message.id for e in first] == [ids[4], ids[3]]
    assert [e.seq for e in first] == [5, 4]
    assert more
    rest, more = await store.search_messages(
        bob.id, ["report"], first[-1].message.id, 10
    )
    assert [e.message.id for e in rest] == [ids[2], ids[1], ids[0]]
    assert not more


async def test_range_and_argument_checks(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await say(store, alice, bob, "hello")
    assert await store.search_messages(alice.id, ["hello"], MessageId(2**70), 5) != (
        [],
        False,
    )
    assert await store.search_messages(alice.id, ["hello"], MessageId(-(2**70)), 5) == (
        [],
        False,
    )
    assert await store.search_messages(UserId(2**70), ["hello"], None, 5) == ([], False)
    with pytest.raises(ValueError, match="limit"):
        await store.search_messages(alice.id, ["hello"], None, -1)
    with pytest.raises(ValueError, match="term"):
        await store.search_messages(alice.id, [], None, 5)


async def test_index_follows_deletes_and_updates(tmp_path: pathlib.Path) -> None:
    # Recalls and deletions change the messages table directly; the
    # triggers keep the index in step.
    path = tmp_path / "db"
    store = SqliteStore(path)
    await store.open()
    alice, bob = await make_users(store, "alice", "bob")
    gone = await say(store, alice, bob, "delete me please")
    edited = await say(store, alice, bob, "original words")
    await store.close()

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM inbox WHERE message_id = ?", (gone,))
    conn.execute("DELETE FROM messages WHERE id = ?", (gone,))
    conn.execute("UPDATE messages SET body = ? WHERE id = ?", (b"rewritten", edited))
    conn.commit()
    indexed = conn.execute("SELECT rowid FROM message_search ORDER BY rowid").fetchall()
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        assert await texts(store, bob, "delete") == []
        assert await texts(store, bob, "original") == []
        assert await texts(store, bob, "rewritten") == ["rewritten"]
    finally:
        await store.close()
    assert indexed == [(edited,)]


async def test_upgrade_indexes_existing_messages(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:4]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("INSERT INTO users VALUES (1, 'alice', 'h', 1), (2, 'bob', 'h', 1)")
    conn.execute(
        "INSERT INTO messages (id, sender, sender_device, client_id, recipient,"
        " conv_lo, conv_hi, content_type, body, sent_at, sender_seq, recipient_seq)"
        " VALUES (1, 1, 'p', 1, 2, 1, 2, 0, CAST('old news' AS BLOB), 5, 1, 1)"
    )
    conn.execute(
        "INSERT INTO inbox (user_id, seq, message_id) VALUES (1, 1, 1), (2, 1, 1)"
    )
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        entries, _ = await store.search_messages(UserId(2), ["news"], None, 10)
    finally:
        await store.close()
    assert [entry.message.body for entry in entries] == [b"old news"]


async def test_search_reads_fts_newest_first(tmp_path: pathlib.Path) -> None:
    store = SqliteStore(tmp_path / "db")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "db")
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT i.seq FROM message_search AS s"
        " JOIN inbox AS i ON i.user_id = 1 AND i.message_id = s.rowid"
        " JOIN messages AS m ON m.id = s.rowid"
        " WHERE message_search MATCH 'x' ORDER BY s.rowid DESC LIMIT 5"
    ).fetchall()
    conn.close()
    details = [row[-1] for row in plan]
    assert details[0].startswith("SCAN s VIRTUAL TABLE"), details
    assert any("inbox_by_message" in detail for detail in details), details
    assert not any("TEMP B-TREE" in detail for detail in details), details


async def test_recall_and_edit_change_matches(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    recalled = await say(store, alice, bob, "pizza tonight")
    edited = await say(store, alice, bob, "pasta tomorrow")
    await store.recall_message(alice.id, recalled, 10)
    await store.edit_message(alice.id, edited, b"risotto tomorrow", 11)

    for user in (alice, bob):
        assert await texts(store, user, "pizza") == []
        assert await texts(store, user, "pasta") == []
        entries, _ = await store.search_messages(user.id, ["risotto"], None, 10)
        assert [entry.message.id for entry in entries] == [edited]
        assert [entry.message.change for entry in entries] == [0]


async def test_group_recall_leaves_every_inbox(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    change = await store.create_group(
        "g", alice.id, [bob.id, carol.id], 1, max_members=LIMIT
    )
    result = await store.append_group_message(
        bob.id, PHONE, ClientMessageId(7), change.group.id, 0, b"secret word", 2
    )
    await store.recall_message(bob.id, result.message.id, 3)

    for user in (alice, bob, carol):
        assert await texts(store, user, "secret") == []


async def test_deleted_for_self_is_not_found(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    message_id = await say(store, alice, bob, "forget this")
    await store.delete_message_for(bob.id, message_id, 10)

    assert await texts(store, bob, "forget") == []
    assert await texts(store, alice, "forget") == ["forget this"]


async def test_punctuation_splits_words(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await say(store, alice, bob, "write to me@example.org, or see e-mail.txt")

    assert len(await texts(store, bob, "example")) == 1
    assert len(await texts(store, bob, "org")) == 1
    assert len(await texts(store, bob, "mail")) == 1
    assert len(await texts(store, bob, "e-mail")) == 1
    assert len(await texts(store, bob, "txt", "!!!")) == 1
    assert await texts(store, bob, "!!!") == []
    assert await texts(store, bob, "mail-e") == []
    assert await texts(store, bob, "it's") == []
    assert await texts(store, bob, "back\\slash") == []
