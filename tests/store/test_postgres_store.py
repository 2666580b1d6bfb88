"""Behaviour specific to PostgresStore: many writers, shards, outbox, schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import InboxEntry, StoreError
from switchboard.store.postgres import PostgresStore
from switchboard.store.postgres_schema import MIGRATIONS, SCHEMA_VERSION
from switchboard.store.shards import ShardMap
from tests.support.postgres import (
    ROOT,
    ScratchDatabases,
    interleaved_shard_map,
    scratch_databases,
)

WRITER_SCRIPT = Path(__file__).with_name("postgres_writer.py")
PHONE = DeviceId("phone")
LINE_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def databases() -> Iterator[ScratchDatabases]:
    with scratch_databases(2) as created:
        yield created


@pytest.fixture
def clean(databases: ScratchDatabases) -> ScratchDatabases:
    databases.reset()
    return databases


@pytest.fixture(params=["one-database", "two-databases"])
def shard_map(request: pytest.FixtureRequest, clean: ScratchDatabases) -> ShardMap:
    if request.param == "one-database":
        return ShardMap.even(clean.dsns[:1])
    return interleaved_shard_map(clean.dsns)


@contextlib.asynccontextmanager
async def opened(
    shard_map: ShardMap, relay_interval_s: float = 10.0
) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(shard_map, pool_size=4, relay_interval_s=relay_interval_s)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def read_whole_inbox(store: PostgresStore, user_id: UserId) -> list[InboxEntry]:
    entries: list[InboxEntry] = []
    after_seq = Seq(0)
    while True:
        page = await store.read_inbox(user_id, after_seq, 100)
        entries.extend(page.entries)
        if not page.has_more:
            return entries
        after_seq = page.entries[-1].seq


async def start_writer(
    shard_map: ShardMap,
    users: list[UserId],
    device: str,
    count: int,
    *flags: str,
    **options: str,
) -> asyncio.subprocess.Process:
    args = [sys.executable, str(WRITER_SCRIPT)]
    for dsn in shard_map.dsns:
        args += ["--dsn", dsn]
    if len(shard_map.dsns) > 1:
        args.append("--interleaved")
    args += ["--users", ",".join(map(str, users)), "--device", device]
    args += ["--count", str(count)]
    args += flags
    for name, value in options.items():
        args += [f"--{name}", value]
    return await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def writer_results(
    writer: asyncio.subprocess.Process,
) -> list[tuple[MessageId, dict[UserId, Seq]]]:
    stdout, stderr = await asyncio.wait_for(writer.communicate(), LINE_TIMEOUT_S * 2)
    assert writer.returncode == 0, stderr.decode()
    results = []
    for line in stdout.decode().splitlines():
        record = json.loads(line)
        seqs = {UserId(int(user)): Seq(seq) for user, seq in record["seqs"].items()}
        results.append((MessageId(record["id"]), seqs))
    return results


async def check_inboxes(
    store: PostgresStore,
    users: list[UserId],
    results: list[tuple[MessageId, dict[UserId, Seq]]],
) -> None:
    """Check every inbox is gapless and each result's seqs point at its message."""
    expected: dict[UserId, dict[Seq, MessageId]] = {user: {} for user in users}
    for message_id, seqs in results:
        for user, seq in seqs.items():
            assert seq not in expected[user], f"seq {seq} of user {user} given twice"
            expected[user][seq] = message_id

    for user in users:
        entries = await read_whole_inbox(store, user)
        seqs = [entry.seq for entry in entries]
        assert seqs == list(range(1, len(entries) + 1)), f"inbox of user {user}"
        assert len({entry.message.id for entry in entries}) == len(entries)
        assert {e.seq: e.message.id for e in entries} == expected[user]
        assert await store.head_seq(user) == len(entries)


# Concurrent writers.


async def test_concurrent_stores_and_processes_keep_seqs_gapless(
    shard_map: ShardMap,
) -> None:
    async with opened(shard_map) as setup:
        users = [(await setup.create_user(f"u{i}", "hash", 0)).id for i in range(6)]

    # Three stores in this process, each with its own pool, and two processes,
    # all appending between the same six users at once.
    writers = [
        await start_writer(shard_map, users, f"process-{n}", 60, seed=str(n))
        for n in range(2)
    ]
    stores = [PostgresStore(shard_map, pool_size=3) for _ in range(3)]
    for store in stores:
        await store.open()

    async def append_many(
        store: PostgresStore, device: str, seed: int
    ) -> list[tuple[MessageId, dict[UserId, Seq]]]:
        rng = random.Random(seed)

        async def one(client_id: int) -> tuple[MessageId, dict[UserId, Seq]]:
            sender, recipient = rng.sample(users, 2)
            result = await store.append_message(
                sender,
                DeviceId(device),
                ClientMessageId(client_id),
                recipient,
                1,
                b"x",
                0,
            )
            seqs = {sender: result.sender_seq, recipient: result.recipient_seq}
            return result.message.id, seqs

        return list(await asyncio.gather(*(one(c) for c in range(1, 61))))

    try:
        in_process = await asyncio.gather(
            *(
                append_many(store, f"store-{n}", 10 + n)
                for n, store in enumerate(stores)
            )
        )
        from_processes = [await writer_results(writer) for writer in writers]
    finally:
        for store in stores:
            await store.close()

    results = [r for batch in in_process + from_processes for r in batch]
    assert len(results) == 5 * 60
    async with opened(shard_map) as store:
        await check_inboxes(store, users, results)


async def test_concurrent_group_writers_keep_order(shard_map: ShardMap) -> None:
    async with opened(shard_map) as setup:
        users = [(await setup.create_user(f"u{i}", "hash", 0)).id for i in range(5)]
        change = await setup.create_group("g", users[0], users[1:], 0, max_members=9)
        group_id = change.group.id
        writers = [
            await start_writer(
                shard_map, users, f"process-{n}", 40, group=str(group_id), seed=str(n)
            )
            for n in range(2)
        ]

        async def post(client_id: int) -> tuple[MessageId, dict[UserId, Seq]]:
            result = await setup.append_group_message(
                users[client_id % 5],
                PHONE,
                ClientMessageId(client_id),
                group_id,
                1,
                b"x",
                0,
            )
            return result.message.id, result.seqs

        in_process = await asyncio.gather(*(post(c) for c in range(1, 41)))
        from_processes = [await writer_results(writer) for writer in writers]

        results = list(in_process) + [r for batch in from_processes for r in batch]
        await check_inboxes(setup, users, results)
        # Every member sees the group's messages in one order: by message id.
        for user in users:
            ids = [e.message.id for e in await read_whole_inbox(setup, user)]
            assert ids == sorted(ids), f"inbox of user {user}"


# Shards.


async def test_rows_live_in_their_shards_database(clean: ScratchDatabases) -> None:
    shard_map = interleaved_shard_map(clean.dsns)
    async with opened(shard_map) as store:
        users = [(await store.create_user(f"u{i}", "hash", 0)).id for i in range(4)]
        for client_id, (sender, recipient) in enumerate(
            [(users[0], users[1]), (users[1], users[2]), (users[3], users[0])], start=1
        ):
            await store.append_message(
                sender, PHONE, ClientMessageId(client_id), recipient, 1, b"x", 0
            )
        change = await store.create_group("g", users[0], users[1:], 0, max_members=9)

    for index, dsn in enumerate(clean.dsns):
        conn = await asyncpg.connect(dsn)
        try:
            inbox_users = {
                row["user_id"] for row in await conn.fetch("SELECT user_id FROM inbox")
            }
            group_ids = {row["id"] for row in await conn.fetch("SELECT id FROM groups")}
            outbox = await conn.fetchval("SELECT count(*) FROM outbox")
        finally:
            await conn.close()
        assert inbox_users == {u for u in users if u % 2 == index}
        assert outbox == 0
        expected_groups = {change.group.id} if change.group.id % 2 == index else set()
        assert group_ids == expected_groups


async def test_changed_shard_map_raises(clean: ScratchDatabases) -> None:
    async with opened(ShardMap.even(clean.dsns)):
        pass

    with pytest.raises(StoreError, match="shard 128 is on database 1"):
        async with opened(ShardMap.even(clean.dsns[:1])):
            pass


async def test_reordered_dsns_raise(clean: ScratchDatabases) -> None:
    async with opened(ShardMap.even(clean.dsns)):
        pass

    with pytest.raises(StoreError, match="DSN position 0 was set up as database 1"):
        async with opened(ShardMap.even(clean.dsns[::-1])):
            pass


# Outbox and crashes.


@contextlib.asynccontextmanager
async def locked_inbox_head(dsn: str, user_id: UserId) -> AsyncIterator[None]:
    """Hold the row lock on a user's inbox head, so copies to it wait."""
    conn = await asyncpg.connect(dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(
            "INSERT INTO inbox_heads (user_id, head_seq) VALUES ($1, 0)"
            " ON CONFLICT (user_id) DO UPDATE SET head_seq = inbox_heads.head_seq",
            user_id,
        )
        yield
        await transaction.commit()
    finally:
        await conn.close()


async def wait_for_outbox_row(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(int(LINE_TIMEOUT_S * 10)):
            if await conn.fetchval("SELECT count(*) FROM outbox"):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError("the writer stored no outbox row in time")


async def kill_writer_after_origin_commit(
    clean: ScratchDatabases, sender: UserId, recipient: UserId
) -> None:
    """Run a writer that stores a message from ``sender`` to ``recipient``, in
    another database, and kill it before it writes the recipient's copy."""
    shard_map = interleaved_shard_map(clean.dsns)
    sender_dsn = clean.dsns[sender % 2]
    recipient_dsn = clean.dsns[recipient % 2]
    async with locked_inbox_head(recipient_dsn, recipient):
        writer = await start_writer(
            shard_map, [sender, recipient], "phone", 1, "--from-first", tasks="1"
        )
        try:
            await wait_for_outbox_row(sender_dsn)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(writer.pid, signal.SIGKILL)
            await writer.wait()


async def make_pair(shard_map: ShardMap) -> tuple[UserId, UserId]:
    async with opened(shard_map) as store:
        alice = (await store.create_user("alice", "hash", 0)).id
        bob = (await store.create_user("bob", "hash", 0)).id
    assert shard_map.database_of(alice) != shard_map.database_of(bob)
    return alice, bob


async def test_open_relays_copies_left_by_crash(clean: ScratchDatabases) -> None:
    shard_map = interleaved_shard_map(clean.dsns)
    alice, bob = await make_pair(shard_map)

    await kill_writer_after_origin_commit(clean, alice, bob)

    async with opened(shard_map) as store:
        alice_inbox = await read_whole_inbox(store, alice)
        bob_inbox = await read_whole_inbox(store, bob)
    assert [e.seq for e in alice_inbox] == [1]
    assert [e.seq for e in bob_inbox] == [1]
    assert bob_inbox[0].message == alice_inbox[0].message


async def test_periodic_relay_finishes_copies(clean: ScratchDatabases) -> None:
    shard_map = interleaved_shard_map(clean.dsns)
    alice, bob = await make_pair(shard_map)

    async with opened(shard_map, relay_interval_s=0.2) as store:
        await kill_writer_after_origin_commit(clean, alice, bob)
        assert await store.head_seq(bob) == 0

        for _ in range(int(LINE_TIMEOUT_S * 10)):
            if await store.head_seq(bob):
                break
            await asyncio.sleep(0.1)
        bob_inbox = await read_whole_inbox(store, bob)

    assert [e.seq for e in bob_inbox] == [1]


async def test_resend_finishes_pending_copies(clean: ScratchDatabases) -> None:
    shard_map = interleaved_shard_map(clean.dsns)
    alice, bob = await make_pair(shard_map)

    # The periodic relay would not run during the test.
    async with opened(shard_map, relay_interval_s=3600) as store:
        await kill_writer_after_origin_commit(clean, alice, bob)
        assert await store.head_seq(bob) == 0

        repeat = await store.append_message(
            alice, PHONE, ClientMessageId(1), bob, 1, b"resent", 0
        )
        bob_inbox = await read_whole_inbox(store, bob)

    assert repeat.duplicate is True
    assert repeat.message.body == b"phone 1"
    assert repeat.sender_seq == 1
    assert repeat.recipient_seq == 1
    assert bob_inbox == [InboxEntry(Seq(1), repeat.message, unread=1)]


# Changes relayed late.

RECALL, EDIT = 2, 3


def with_lock_timeout(shard_map: ShardMap) -> ShardMap:
    """Return the same map on connections that give up waiting for a row lock
    after 200 ms, so a copy to a locked inbox fails and stays in the outbox."""
    dsns = tuple(f"{dsn}?lock_timeout=200" for dsn in shard_map.dsns)
    return ShardMap(dsns, shard_map.assignment)


async def change_left_in_outbox(
    clean: ScratchDatabases,
    recipient: UserId,
    change: Callable[[PostgresStore], Awaitable[object]],
) -> None:
    """Run ``change`` so that it commits in its origin database but its copy to
    ``recipient``, in the other database, waits in the outbox."""
    shard_map = interleaved_shard_map(clean.dsns)
    async with locked_inbox_head(clean.dsns[recipient % 2], recipient):
        impatient = with_lock_timeout(shard_map)
        async with opened(impatient, relay_interval_s=3600) as store:
            with pytest.raises(StoreError, match="lock timeout"):
                await change(store)


async def test_late_edit_keeps_recall(clean: ScratchDatabases) -> None:
    shard_map = interleaved_shard_map(clean.dsns)
    alice, bob = await make_pair(shard_map)
    async with opened(shard_map, relay_interval_s=3600) as store:
        sent = await store.append_message(
            alice, PHONE, ClientMessageId(1), bob, 1, b"secret", 0
        )
        message_id = sent.message.id
        await change_left_in_outbox(
            clean, bob, lambda s: s.edit_message(alice, message_id, b"secret 2", 5)
        )
        await store.recall_message(alice, message_id, 6)

    # open() relays the edit, after the recall.
    async with opened(shard_map) as store:
        bob_inbox = await read_whole_inbox(store, bob)
        alice_inbox = await read_whole_inbox(store, alice)

    assert [e.message.change for e in bob_inbox] == [0, RECALL, EDIT]
    assert [e.message.body for e in bob_inbox] == [b"", b"", b""]
    assert bob_inbox[0].message.recalled_at == 6
    assert [e.message.change for e in alice_inbox] == [0, EDIT, RECALL]
    assert [e.message.body for e in alice_inbox] == [b"", b"", b""]


async def test_late_edit_keeps_newer_edit(clean: ScratchDatabases) -> None:
    shard_map = interleaved_shard_map(clean.dsns)
    alice, bob = await make_pair(shard_map)
    async with opened(shard_map, relay_interval_s=3600) as store:
        sent = await store.append_message(
            alice, PHONE, ClientMessageId(1), bob, 1, b"one", 0
        )
        message_id = sent.message.id
        await change_left_in_outbox(
            clean, bob, lambda s: s.edit_message(alice, message_id, b"two", 5)
        )
        await store.edit_message(alice, message_id, b"three", 6)

    async with opened(shard_map) as store:
        bob_inbox = await read_whole_inbox(store, bob)
        held = await store.get_message(message_id, bob)

    assert [e.message.body for e in bob_inbox] == [b"three", b"three", b"two"]
    assert held is not None
    assert held.message.body == b"three"
    assert held.message.edited_at == 6


# Schema.


async def test_schema_version_recorded_once(clean: ScratchDatabases) -> None:
    shard_map = ShardMap.even(clean.dsns[:1])
    for _ in range(2):
        async with opened(shard_map):
            pass

    conn = await asyncpg.connect(clean.dsns[0])
    try:
        versions = [
            r["version"] for r in await conn.fetch("SELECT version FROM schema_version")
        ]
    finally:
        await conn.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


async def create_version_1(dsn: str, *statements: str) -> None:
    """Set up a database at schema version 1 and run ``statements`` on it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE schema_version (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for statement in (*MIGRATIONS[0], *statements):
            await conn.execute(statement)
        await conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    finally:
        await conn.close()


async def test_upgrade_counts_old_messages_as_read(clean: ScratchDatabases) -> None:
    # Alice (1) wrote to Bob (2), then made group 1 with him, and Bob posted
    # in it. Carol (3) has no copies here, as if her inbox were in another
    # database, so the upgrade tells her message 13 from her notice 14 by
    # content type (2 for notices).
    copy = (
        "INSERT INTO inbox (user_id, seq, message_id, sender, recipient, group_id,"
        " peer, content_type, body, sent_at, sender_device, client_id) VALUES "
    )
    await create_version_1(
        clean.dsns[0],
        "INSERT INTO users VALUES (1, 'alice', 'h', 0), (2, 'bob', 'h', 0),"
        " (3, 'carol', 'h', 0)",
        "SELECT setval('message_ids', 14), setval('group_ids', 1)",
        "INSERT INTO groups VALUES (1, 'g', 1, 0)",
        "INSERT INTO group_members VALUES (1, 1, 'owner', 0), (1, 2, 'member', 0),"
        " (1, 3, 'member', 0)",
        copy + "(1, 1, 10, 1, 2, NULL, 2, 0, 'hi', 0, 'phone', 1),"
        " (2, 1, 10, 1, 2, NULL, 1, 0, 'hi', 0, NULL, NULL),"
        " (1, 2, 11, 1, NULL, 1, NULL, 2, '{}', 0, NULL, NULL),"
        " (2, 2, 11, 1, NULL, 1, NULL, 2, '{}', 0, NULL, NULL),"
        " (1, 3, 12, 2, NULL, 1, NULL, 0, 'yo', 0, NULL, NULL),"
        " (2, 3, 12, 2, NULL, 1, NULL, 0, 'yo', 0, 'phone', 1),"
        " (2, 4, 13, 3, NULL, 1, NULL, 0, 'hey', 0, NULL, NULL),"
        " (2, 5, 14, 3, NULL, 1, NULL, 2, '{}', 0, NULL, NULL)",
        "INSERT INTO inbox_heads VALUES (1, 3), (2, 5)",
        "INSERT INTO group_messages VALUES (1, 11, 1, 2, '{}', 0, NULL),"
        " (1, 12, 2, 0, 'yo', 0, NULL), (1, 13, 3, 0, 'hey', 0, NULL),"
        " (1, 14, 3, 2, '{}', 0, NULL)",
    )
    alice, bob, group = UserId(1), UserId(2), GroupId(1)

    async with opened(ShardMap.even(clean.dsns[:1])) as store:
        page = await store.list_conversations(bob, None, 10)
        notices: dict[int, bool] = {}
        for message_id in (11, 12, 13, 14):
            held = await store.get_message(MessageId(message_id), bob)
            assert held is not None
            notices[message_id] = held.notice
        counts = await store.group_read_counts(
            group, [MessageId(i) for i in (11, 12, 13, 14)]
        )
        direct = await store.append_message(
            alice, PHONE, ClientMessageId(2), bob, 0, b"new", 1
        )
        posted = await store.append_group_message(
            alice, PHONE, ClientMessageId(3), group, 0, b"all", 1
        )

    assert [c.name for c in page.conversations] == ["g", "alice"]
    assert [c.unread for c in page.conversations] == [0, 0]
    assert [c.read_id for c in page.conversations] == [14, 10]
    assert [c.last.seq for c in page.conversations] == [5, 1]
    assert page.total_unread == 0
    assert notices == {11: True, 12: False, 13: False, 14: True}
    # Notices are left out. Alice's read position is her latest copy here, 12.
    assert [(c.message_id, c.read, c.members) for c in counts] == [
        (12, 1, 2),
        (13, 1, 2),
    ]
    assert direct.recipient_unread == 1
    assert posted.unread[bob] == 1


async def test_upgrade_finds_peers_and_indexes_text(clean: ScratchDatabases) -> None:
    # Alice (1) and Bob (2) wrote to each other, and Bob read Alice's
    # message (a change entry, 13). Carol (3) wrote to Alice only. Message
    # 14 is a media message, which search leaves out.
    copy = (
        "INSERT INTO inbox (user_id, seq, message_id, sender, recipient, peer,"
        " content_type, body, sent_at, change, target) VALUES "
    )
    await create_version_1(
        clean.dsns[0],
        *MIGRATIONS[1],
        "INSERT INTO schema_version (version) VALUES (2)",
        "INSERT INTO users VALUES (1, 'alice', 'h', 0), (2, 'bob', 'h', 0),"
        " (3, 'carol', 'h', 0)",
        "SELECT setval('message_ids', 14)",
        copy + "(1, 1, 10, 1, 2, 2, 0, 'old news', 0, NULL, NULL),"
        " (2, 1, 10, 1, 2, 1, 0, 'old news', 0, NULL, NULL),"
        " (1, 2, 11, 2, 1, 2, 0, 'Café?', 0, NULL, NULL),"
        " (2, 2, 11, 2, 1, 1, 0, 'Café?', 0, NULL, NULL),"
        " (1, 3, 12, 3, 1, 3, 0, 'old gossip', 0, NULL, NULL),"
        " (2, 3, 13, 2, 1, 1, 0, '', 0, 1, 10),"
        " (1, 4, 14, 1, 2, 2, 1, 'news', 0, NULL, NULL)",
        "INSERT INTO inbox_heads VALUES (1, 4), (2, 3)",
    )
    alice, bob, carol = UserId(1), UserId(2), UserId(3)

    async with opened(ShardMap.even(clean.dsns[:1])) as store:
        peers = await store.peers_among(alice, [bob, carol])
        carol_peers = await store.peers_among(carol, [alice])
        news, _ = await store.search_messages(alice, ["news"], None, 10)
        cafe, _ = await store.search_messages(bob, ["CAFE"], None, 10)
        gossip, _ = await store.search_messages(bob, ["gossip"], None, 10)

    assert peers == {bob}
    assert carol_peers == set()
    assert [entry.message.id for entry in news] == [10]
    assert [(entry.message.id, entry.seq) for entry in cafe] == [(11, 2)]
    assert gossip == []


async def test_newer_schema_version_raises(clean: ScratchDatabases) -> None:
    shard_map = ShardMap.even(clean.dsns[:1])
    async with opened(shard_map):
        pass
    conn = await asyncpg.connect(clean.dsns[0])
    try:
        await conn.execute(
            "INSERT INTO schema_version (version) VALUES ($1)", SCHEMA_VERSION + 1
        )
    finally:
        await conn.close()

    with pytest.raises(StoreError, match="newer than the latest version"):
        async with opened(shard_map):
            pass


async def test_concurrent_opens_migrate_once(clean: ScratchDatabases) -> None:
    shard_map = interleaved_shard_map(clean.dsns)
    stores = [PostgresStore(shard_map, pool_size=2) for _ in range(4)]

    await asyncio.gather(*(store.open() for store in stores))
    await asyncio.gather(*(store.close() for store in stores))

    conn = await asyncpg.connect(clean.dsns[0])
    try:
        count = await conn.fetchval("SELECT count(*) FROM schema_version")
    finally:
        await conn.close()
    assert count == SCHEMA_VERSION


async def test_unreachable_server_raises_store_error() -> None:
    # Port 1 on loopback has no server, so the connection is refused.
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none")

    with pytest.raises(StoreError, match="failed to open PostgreSQL store"):
        await store.open()

    with pytest.raises(StoreError):
        await store.get_user(UserId(1))


def test_bigint_overflow_raises_value_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none")

    with pytest.raises(ValueError, match="invalid sender"):
        asyncio.run(
            store.append_message(
                UserId(2**63), PHONE, ClientMessageId(1), UserId(1), 1, b"", 0
            )
        )


async def test_commits_wait_for_wal_flush(clean: ScratchDatabases) -> None:
    # Even where the database's default is off, the store turns it on.
    conn = await asyncpg.connect(clean.dsns[0])
    try:
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    finally:
        await conn.close()
    try:
        async with opened(ShardMap.even(clean.dsns)) as store:
            assert await store.synchronous_commit() == ["on"] * len(clean.dsns)
    finally:
        conn = await asyncpg.connect(clean.dsns[0])
        try:
            await conn.execute(f'ALTER DATABASE "{database}" RESET synchronous_commit')
        finally:
            await conn.close()
