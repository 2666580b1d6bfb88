"""Behaviour specific to SqliteStore: options, schema, group commit, failures."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import sqlite3
from collections.abc import AsyncIterator

import pytest

from switchboard.ids import ClientMessageId, DeviceId, MessageId, Seq, UserId
from switchboard.store.base import AppendResult, NameTaken, StoreError, User
from switchboard.store.migrations import MIGRATIONS, SCHEMA_VERSION
from switchboard.store.sqlite import SqliteStore

PHONE = DeviceId("phone")


@pytest.fixture
def db_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "switchboard.db"


@pytest.fixture
async def sqlite_store(db_path: pathlib.Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(db_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def send(
    store: SqliteStore, sender: User, recipient: UserId, client_id: int
) -> AppendResult:
    return await store.append_message(
        sender.id, PHONE, ClientMessageId(client_id), recipient, 1, b"body", 5_000
    )


def read_pragma(path: pathlib.Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


# Options.


def test_invalid_synchronous_mode_raises(db_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match=r"'off'.*'normal', 'full'"):
        SqliteStore(db_path, synchronous="off")


def test_uppercase_synchronous_mode_raises(db_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="'FULL'"):
        SqliteStore(db_path, synchronous="FULL")


def test_invalid_batch_max_raises(db_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="batch_max 0"):
        SqliteStore(db_path, batch_max=0)


async def test_full_synchronous_mode_works(db_path: pathlib.Path) -> None:
    store = SqliteStore(db_path, synchronous="full")
    await store.open()
    try:
        alice = await store.create_user("alice", "hash", 1)
        result = await send(store, alice, alice.id, 1)
        assert result.recipient_seq == 1
    finally:
        await store.close()


# Schema and migrations.


async def test_open_enables_wal_and_migrates(
    sqlite_store: SqliteStore, db_path: pathlib.Path
) -> None:
    assert read_pragma(db_path, "journal_mode") == "wal"
    assert read_pragma(db_path, "user_version") == SCHEMA_VERSION


async def test_reopen_applies_no_migrations(
    db_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.store")
    for _ in range(2):
        store = SqliteStore(db_path)
        await store.open()
        await store.close()

    messages = [record.getMessage() for record in caplog.records]
    applied = [m for m in messages if "applied schema migrations" in m]
    opened = [m for m in messages if "opened SQLite store" in m]
    assert len(applied) == 1
    assert len(opened) == 2
    assert f"schema version {SCHEMA_VERSION}" in opened[1]
    assert read_pragma(db_path, "user_version") == SCHEMA_VERSION


async def test_newer_schema_is_rejected(db_path: pathlib.Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SqliteStore(db_path)

    with pytest.raises(StoreError, match="newer than"):
        await store.open()

    assert read_pragma(db_path, "user_version") == SCHEMA_VERSION + 1
    with pytest.raises(StoreError):
        await store.get_user(UserId(1))
    await store.close()


async def test_failed_migration_changes_nothing(db_path: pathlib.Path) -> None:
    # A table that the first migration creates after several others.
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE inbox_heads (unrelated INTEGER)")
    conn.close()
    store = SqliteStore(db_path)

    with pytest.raises(StoreError, match="inbox_heads already exists"):
        await store.open()

    conn = sqlite3.connect(db_path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    assert tables == {"inbox_heads"}
    assert version == 0
    await store.close()


async def test_open_twice_raises(sqlite_store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="open"):
        await sqlite_store.open()


# Group commit.


async def test_concurrent_appends_share_commits(sqlite_store: SqliteStore) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)
    bob = await sqlite_store.create_user("bob", "hash", 1)
    commits_before = sqlite_store.commits

    await asyncio.gather(*(send(sqlite_store, alice, bob.id, i) for i in range(500)))

    # The writes are queued within one event loop step, so a few batches take
    # them all (5 on a 2-core VM). The bound leaves room for a slow machine.
    commits = sqlite_store.commits - commits_before
    assert 1 <= commits < 100
    assert await sqlite_store.head_seq(bob.id) == 500


async def test_batch_max_caps_batch_size(db_path: pathlib.Path) -> None:
    store = SqliteStore(db_path, batch_max=10)
    await store.open()
    try:
        alice = await store.create_user("alice", "hash", 1)
        commits_before = store.commits

        await asyncio.gather(*(send(store, alice, alice.id, i) for i in range(100)))

        assert store.commits - commits_before >= 10
        assert await store.head_seq(alice.id) == 100
    finally:
        await store.close()


async def test_gather_order_is_seq_order(sqlite_store: SqliteStore) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)
    bob = await sqlite_store.create_user("bob", "hash", 1)

    results = await asyncio.gather(
        *(send(sqlite_store, alice, bob.id, i) for i in range(100))
    )

    assert [result.recipient_seq for result in results] == list(range(1, 101))
    ids = [result.message.id for result in results]
    assert ids == sorted(ids)


class WriteLock:
    """The database's write lock, held by a second connection."""

    def __init__(self, path: pathlib.Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._conn.close()


async def test_failed_write_fails_alone(
    sqlite_store: SqliteStore, db_path: pathlib.Path
) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)
    bob = await sqlite_store.create_user("bob", "hash", 1)
    ghost = User(UserId(999), "ghost", "hash", 1)  # never created
    commits_before = sqlite_store.commits

    # While another connection holds the write lock the writes queue up, so
    # they are committed in at most two batches.
    lock = WriteLock(db_path)
    try:
        tasks = [
            asyncio.create_task(send(sqlite_store, alice, bob.id, 1)),
            asyncio.create_task(send(sqlite_store, alice, bob.id, 2)),
            # Fails on a foreign key after bob's inbox head was advanced.
            asyncio.create_task(send(sqlite_store, ghost, bob.id, 3)),
            asyncio.create_task(sqlite_store.create_user("alice", "hash", 2)),
            asyncio.create_task(send(sqlite_store, alice, bob.id, 4)),
            asyncio.create_task(sqlite_store.create_user("carol", "hash", 2)),
        ]
        await asyncio.sleep(0.1)
    finally:
        lock.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert sqlite_store.commits - commits_before <= 2
    assert isinstance(results[0], AppendResult)
    assert isinstance(results[1], AppendResult)
    assert type(results[2]) is StoreError
    assert "FOREIGN KEY" in str(results[2])
    assert isinstance(results[3], NameTaken)
    assert isinstance(results[4], AppendResult)
    assert isinstance(results[5], User)
    # The failed append's changes, bob's next sequence included, were rolled back.
    stored = (results[0], results[1], results[4])
    assert [result.recipient_seq for result in stored] == [1, 2, 3]
    assert [result.sender_seq for result in stored] == [1, 2, 3]
    assert await sqlite_store.head_seq(bob.id) == 3
    assert (await sqlite_store.get_device(alice.id, PHONE)).last_client_id == 4


async def test_failed_commit_fails_whole_batch(
    sqlite_store: SqliteStore,
    db_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)
    bob = await sqlite_store.create_user("bob", "hash", 1)
    await send(sqlite_store, alice, bob.id, 1)

    # No portable way makes SQLite's COMMIT fail on demand, so replace the
    # writer's commit step with one that fails the first time. Before failing
    # it records the client ids that the batch's transaction contains.
    writer = sqlite_store._writer
    real_commit = writer._commit
    failed_batches: list[set[int]] = []

    def fail_first_commit(conn: sqlite3.Connection) -> None:
        if failed_batches:
            real_commit(conn)
            return
        rows = conn.execute("SELECT client_id FROM messages WHERE client_id > 1")
        failed_batches.append({row[0] for row in rows})
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer, "_commit", fail_first_commit)

    # Holding the write lock makes the writes queue up, so the failed batch
    # usually contains several of them.
    client_ids = list(range(2, 12))
    lock = WriteLock(db_path)
    try:
        tasks = [
            asyncio.create_task(send(sqlite_store, alice, bob.id, client_id))
            for client_id in client_ids
        ]
        await asyncio.sleep(0.1)
    finally:
        lock.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert len(failed_batches) == 1
    failed = failed_batches[0]
    assert failed
    for client_id, result in zip(client_ids, results, strict=True):
        if client_id in failed:
            assert isinstance(result, StoreError), (client_id, result)
        else:
            assert isinstance(result, AppendResult), (client_id, result)
            assert result.duplicate is False

    # Nothing of the failed batch was stored, and sequences have no gap.
    stored = len(client_ids) - len(failed)
    assert await sqlite_store.head_seq(bob.id) == 1 + stored
    retry = await send(sqlite_store, alice, bob.id, min(failed))
    assert retry.duplicate is False
    assert retry.recipient_seq == 2 + stored


async def test_reads_proceed_while_write_lock_held(
    sqlite_store: SqliteStore, db_path: pathlib.Path
) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)
    await send(sqlite_store, alice, alice.id, 1)

    lock = WriteLock(db_path)
    try:
        pending = asyncio.create_task(send(sqlite_store, alice, alice.id, 2))
        head = await asyncio.wait_for(sqlite_store.head_seq(alice.id), timeout=2)
        assert head == 1
        assert not pending.done()
    finally:
        lock.release()
    assert (await pending).recipient_seq == 2


# Integer ranges.


async def test_unstorable_integers_in_writes_raise(sqlite_store: SqliteStore) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)

    with pytest.raises(ValueError, match="client_id 18446744073709551615"):
        await send(sqlite_store, alice, alice.id, 2**64 - 1)
    with pytest.raises(ValueError, match="client_id -1"):
        await send(sqlite_store, alice, alice.id, -1)
    with pytest.raises(ValueError, match="recipient"):
        await send(sqlite_store, alice, UserId(2**64), 1)
    with pytest.raises(ValueError, match="seq -1"):
        await sqlite_store.set_cursor(alice.id, PHONE, Seq(-1))


async def test_unstorable_integers_in_reads_are_absent(
    sqlite_store: SqliteStore,
) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)
    for client_id in range(1, 4):
        await send(sqlite_store, alice, alice.id, client_id)

    assert await sqlite_store.get_user(UserId(2**64)) is None
    assert await sqlite_store.head_seq(UserId(2**64)) == 0
    assert (await sqlite_store.get_device(UserId(-(2**64)), PHONE)).cursor == 0

    page = await sqlite_store.read_inbox(alice.id, Seq(2**64 - 1), 10)
    assert page.entries == []
    assert page.has_more is False
    assert page.head_seq == 3

    page = await sqlite_store.read_inbox(alice.id, Seq(0), 2**64)
    assert len(page.entries) == 3

    messages, has_more = await sqlite_store.read_conversation(
        alice.id, alice.id, MessageId(2**64), 10
    )
    assert len(messages) == 3
    assert has_more is False


async def test_negative_limit_raises(sqlite_store: SqliteStore) -> None:
    alice = await sqlite_store.create_user("alice", "hash", 1)

    with pytest.raises(ValueError, match="limit -1"):
        await sqlite_store.read_inbox(alice.id, Seq(0), -1)
    with pytest.raises(ValueError, match="limit -2"):
        await sqlite_store.read_conversation(alice.id, alice.id, None, -2)


# Upgrading a version 1 database.


async def test_upgrade_keeps_direct_messages(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO users VALUES (1, 'alice', 'h', 1), (2, 'bob', 'h', 1)")
    conn.execute(
        "INSERT INTO messages VALUES (7, 1, 'phone', 1, 2, 1, 2, 0, x'6869', 5, 1, 1)"
    )
    conn.execute("INSERT INTO inbox VALUES (1, 1, 7), (2, 1, 7)")
    conn.execute("INSERT INTO inbox_heads VALUES (1, 1), (2, 1)")
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        page = await store.read_inbox(UserId(2), Seq(0), 10)
        assert [e.message.body for e in page.entries] == [b"hi"]
        assert page.entries[0].message.group_id is None
        result = await store.append_message(
            UserId(1), PHONE, ClientMessageId(2), UserId(2), 0, b"again", 6
        )
        assert result.message.id == 8
        assert result.recipient_seq == 2
    finally:
        await store.close()


async def test_upgrade_counts_old_messages_as_read(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO users VALUES (1, 'alice', 'h', 1), (2, 'bob', 'h', 1)")
    conn.execute(
        "INSERT INTO messages VALUES (7, 1, 'phone', 1, 2, 1, 2, 0, x'6869', 5, 1, 1)"
    )
    conn.execute("INSERT INTO inbox VALUES (1, 1, 7), (2, 1, 7)")
    conn.execute("INSERT INTO inbox_heads VALUES (1, 1), (2, 1)")
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        page = await store.list_conversations(UserId(2), None, 10)
        [conversation] = page.conversations
        assert conversation.name == "alice"
        assert conversation.unread == 0
        assert conversation.read_id == 7
        assert conversation.last.message.id == 7
        assert conversation.last.seq == 1
        inbox = await store.read_inbox(UserId(2), Seq(0), 10)
        assert inbox.entries[0].unread == 0

        await store.append_message(
            UserId(1), PHONE, ClientMessageId(2), UserId(2), 0, b"again", 6
        )
        page = await store.list_conversations(UserId(2), None, 10)
        assert page.conversations[0].unread == 1
        assert page.total_unread == 1
    finally:
        await store.close()
