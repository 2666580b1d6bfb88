"""Behaviour every Store implementation must have, tested through the interface."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import pytest

from switchboard.ids import ClientMessageId, DeviceId, MessageId, Seq, UserId
from switchboard.store.base import (
    AppendResult,
    DeviceState,
    InboxEntry,
    NameTaken,
    Session,
    Store,
    StoredMessage,
    StoreError,
    User,
)

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory

PHONE = DeviceId("phone")
LAPTOP = DeviceId("laptop")
TEXT = 1


async def make_users(store: Store, *names: str) -> list[User]:
    return [await store.create_user(name, f"hash-{name}", 1_000) for name in names]


async def send(
    store: Store,
    sender: User,
    recipient: User,
    client_id: int,
    *,
    device: DeviceId = PHONE,
    body: bytes | None = None,
    sent_at: int = 5_000,
) -> AppendResult:
    if body is None:
        body = f"message {client_id}".encode()
    return await store.append_message(
        sender.id,
        device,
        ClientMessageId(client_id),
        recipient.id,
        TEXT,
        body,
        sent_at,
    )


async def read_whole_inbox(store: Store, user: User) -> list[InboxEntry]:
    entries: list[InboxEntry] = []
    after_seq = Seq(0)
    while True:
        page = await store.read_inbox(user.id, after_seq, 100)
        entries.extend(page.entries)
        if not page.has_more:
            return entries
        after_seq = page.entries[-1].seq


def make_session(user: User, token: bytes, device: DeviceId = PHONE) -> Session:
    return Session(
        token_hash=token,
        user_id=user.id,
        device=device,
        platform=2,
        created_at=1_000,
        expires_at=2_000,
    )


# Accounts.


async def test_create_user_returns_account(store: Store) -> None:
    user = await store.create_user("alice", "argon2-hash", 1_234)

    assert user.name == "alice"
    assert user.password_hash == "argon2-hash"
    assert user.created_at == 1_234
    assert user.id > 0


async def test_create_user_assigns_distinct_ids(store: Store) -> None:
    users = await make_users(store, "alice", "bob", "carol")

    assert len({user.id for user in users}) == 3


async def test_count_users(store: Store) -> None:
    assert await store.count_users() == 0

    await make_users(store, "alice", "bob", "carol")

    assert await store.count_users() == 3


async def test_get_user_by_id_and_name(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    assert await store.get_user(alice.id) == alice
    assert await store.get_user(bob.id) == bob
    assert await store.get_user_by_name("alice") == alice
    assert await store.get_user_by_name("bob") == bob


async def test_get_unknown_user_returns_none(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    assert await store.get_user(UserId(alice.id + 1000)) is None
    assert await store.get_user_by_name("nobody") is None
    assert await store.get_user_by_name("ALICE") is None


async def test_create_user_duplicate_name_raises(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    with pytest.raises(NameTaken):
        await store.create_user("alice", "other-hash", 2_000)

    assert await store.get_user_by_name("alice") == alice


async def test_concurrent_duplicate_names_one_wins(store: Store) -> None:
    attempts = [store.create_user("same", f"hash-{i}", i) for i in range(5)]
    others = [store.create_user(f"other-{i}", "hash", i) for i in range(5)]

    results = await asyncio.gather(*attempts, *others, return_exceptions=True)

    winners = [result for result in results[:5] if isinstance(result, User)]
    losers = [result for result in results[:5] if isinstance(result, NameTaken)]
    assert len(winners) == 1
    assert len(losers) == 4
    assert all(isinstance(result, User) for result in results[5:])
    assert await store.get_user_by_name("same") == winners[0]
    for i in range(5):
        assert await store.get_user_by_name(f"other-{i}") is not None


# Sessions.


async def test_session_create_get_delete(store: Store) -> None:
    (alice,) = await make_users(store, "alice")
    session = make_session(alice, b"\x01" * 32)

    await store.create_session(session)
    assert await store.get_session(session.token_hash) == session

    assert await store.delete_session(session.token_hash) == session
    assert await store.get_session(session.token_hash) is None


async def test_delete_unknown_session_returns_none(store: Store) -> None:
    (alice,) = await make_users(store, "alice")
    session = make_session(alice, b"\x02" * 32)
    await store.create_session(session)

    assert await store.delete_session(b"\x03" * 32) is None
    assert await store.delete_session(session.token_hash) == session
    assert await store.delete_session(session.token_hash) is None


async def test_change_password_revokes_other_sessions(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    kept = make_session(alice, b"\x11" * 32)
    phone = make_session(alice, b"\x12" * 32)
    laptop = make_session(alice, b"\x13" * 32, LAPTOP)
    other_user = make_session(bob, b"\x14" * 32)
    for session in (kept, phone, laptop, other_user):
        await store.create_session(session)

    revoked = await store.change_password(alice.id, "new-hash", kept.token_hash)

    assert sorted(revoked, key=lambda s: s.token_hash) == [phone, laptop]
    assert await store.get_session(kept.token_hash) == kept
    assert await store.get_session(phone.token_hash) is None
    assert await store.get_session(laptop.token_hash) is None
    assert await store.get_session(other_user.token_hash) == other_user
    changed = await store.get_user(alice.id)
    assert changed is not None
    assert changed.password_hash == "new-hash"
    unchanged = await store.get_user(bob.id)
    assert unchanged is not None
    assert unchanged.password_hash == "hash-bob"


async def test_get_session_returns_expired_session(store: Store) -> None:
    (alice,) = await make_users(store, "alice")
    session = Session(
        token_hash=b"\x04" * 32,
        user_id=alice.id,
        device=PHONE,
        platform=1,
        created_at=10,
        expires_at=20,
    )
    await store.create_session(session)

    assert await store.get_session(session.token_hash) == session


async def test_sessions_are_independent(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    phone = make_session(alice, b"\x05" * 32, PHONE)
    laptop = make_session(alice, b"\x06" * 32, LAPTOP)
    other = make_session(bob, b"\x07" * 32, PHONE)
    for session in (phone, laptop, other):
        await store.create_session(session)

    await store.delete_session(phone.token_hash)

    assert await store.get_session(phone.token_hash) is None
    assert await store.get_session(laptop.token_hash) == laptop
    assert await store.get_session(other.token_hash) == other


# Devices.


async def test_unknown_device_state_is_zero(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    state = await store.get_device(alice.id, PHONE)

    assert state == DeviceState(cursor=Seq(0), last_client_id=ClientMessageId(0))


async def test_set_cursor_only_rises(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    await store.set_cursor(alice.id, PHONE, Seq(5))
    assert (await store.get_device(alice.id, PHONE)).cursor == 5

    await store.set_cursor(alice.id, PHONE, Seq(3))
    assert (await store.get_device(alice.id, PHONE)).cursor == 5

    await store.set_cursor(alice.id, PHONE, Seq(9))
    assert (await store.get_device(alice.id, PHONE)).cursor == 9


async def test_cursor_is_per_device(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    await store.set_cursor(alice.id, PHONE, Seq(7))

    assert (await store.get_device(alice.id, PHONE)).cursor == 7
    assert (await store.get_device(alice.id, LAPTOP)).cursor == 0
    assert (await store.get_device(bob.id, PHONE)).cursor == 0


async def test_append_raises_last_client_id(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    await send(store, alice, bob, 5)
    assert (await store.get_device(alice.id, PHONE)).last_client_id == 5

    await send(store, alice, bob, 3)
    assert (await store.get_device(alice.id, PHONE)).last_client_id == 5

    await send(store, alice, bob, 8)
    state = await store.get_device(alice.id, PHONE)
    assert state.last_client_id == 8
    assert state.cursor == 0
    assert (await store.get_device(alice.id, LAPTOP)).last_client_id == 0
    assert (await store.get_device(bob.id, PHONE)).last_client_id == 0


async def test_cursor_and_last_client_id_independent(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    await store.set_cursor(alice.id, PHONE, Seq(4))
    await send(store, alice, bob, 11)
    await store.set_cursor(alice.id, PHONE, Seq(6))

    state = await store.get_device(alice.id, PHONE)
    assert state == DeviceState(cursor=Seq(6), last_client_id=ClientMessageId(11))


# Appending messages.


async def test_append_returns_message_and_sequences(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    result = await send(store, alice, bob, 1, body=b"hello", sent_at=7_000)

    assert result.duplicate is False
    assert result.sender_seq == 1
    assert result.recipient_seq == 1
    assert result.message.sender == alice.id
    assert result.message.recipient == bob.id
    assert result.message.content_type == TEXT
    assert result.message.body == b"hello"
    assert result.message.sent_at == 7_000
    assert await store.head_seq(alice.id) == 1
    assert await store.head_seq(bob.id) == 1


async def test_append_stores_entry_in_both_inboxes(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, bob, alice, 1)

    result = await send(store, alice, bob, 1)

    assert result.sender_seq == 2
    assert result.recipient_seq == 2
    alice_inbox = await read_whole_inbox(store, alice)
    bob_inbox = await read_whole_inbox(store, bob)
    # Each has one unread message: Bob's for Alice, Alice's for Bob.
    assert alice_inbox[-1] == InboxEntry(result.sender_seq, result.message, 1)
    assert bob_inbox[-1] == InboxEntry(result.recipient_seq, result.message, 1)
    assert result.sender_unread == 1
    assert result.recipient_unread == 1


async def test_append_repeat_returns_first_copy(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob, 42, body=b"first", sent_at=1)
    await send(store, alice, bob, 43)

    repeat = await send(store, alice, bob, 42, body=b"second", sent_at=2)

    assert repeat.duplicate is True
    assert repeat.message == first.message
    assert repeat.message.body == b"first"
    assert repeat.sender_seq == first.sender_seq
    assert repeat.recipient_seq == first.recipient_seq
    assert await store.head_seq(alice.id) == 2
    assert await store.head_seq(bob.id) == 2
    assert len(await read_whole_inbox(store, bob)) == 2


async def test_append_repeat_to_other_recipient_is_duplicate(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    first = await send(store, alice, bob, 9)

    repeat = await send(store, alice, carol, 9)

    assert repeat.duplicate is True
    assert repeat.message == first.message
    assert await store.head_seq(carol.id) == 0


async def test_same_client_id_other_device_is_new(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob, 42, device=PHONE)

    other = await send(store, alice, bob, 42, device=LAPTOP)

    assert other.duplicate is False
    assert other.message.id != first.message.id
    assert other.sender_seq == first.sender_seq + 1
    assert other.recipient_seq == first.recipient_seq + 1


async def test_same_client_id_other_sender_is_new(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    first = await send(store, alice, bob, 42)

    other = await send(store, carol, bob, 42)

    assert other.duplicate is False
    assert other.message.id != first.message.id
    assert other.recipient_seq == 2


async def test_concurrent_repeats_store_one_copy(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    results = await asyncio.gather(*(send(store, alice, bob, 7) for _ in range(20)))

    originals = [result for result in results if not result.duplicate]
    assert len(originals) == 1
    assert {result.message for result in results} == {originals[0].message}
    assert {result.recipient_seq for result in results} == {1}
    assert await store.head_seq(bob.id) == 1


async def test_message_to_self_takes_one_entry(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    result = await send(store, alice, alice, 1)

    assert result.duplicate is False
    assert result.sender_seq == 1
    assert result.recipient_seq == 1
    assert await store.head_seq(alice.id) == 1
    assert await read_whole_inbox(store, alice) == [InboxEntry(Seq(1), result.message)]

    repeat = await send(store, alice, alice, 1)
    assert repeat.duplicate is True
    assert repeat.sender_seq == 1
    assert repeat.recipient_seq == 1


async def test_sequential_appends_get_increasing_seqs(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    results = [await send(store, alice, bob, client_id) for client_id in range(1, 21)]

    assert [result.sender_seq for result in results] == list(range(1, 21))
    assert [result.recipient_seq for result in results] == list(range(1, 21))
    ids = [result.message.id for result in results]
    assert ids == sorted(ids)


async def test_concurrent_appends_keep_seqs_gapless(store: Store) -> None:
    users = await make_users(store, "u0", "u1", "u2", "u3", "u4")
    rng = random.Random(1)
    pairs = [(rng.choice(users), rng.choice(users)) for _ in range(200)]

    results = await asyncio.gather(
        *(
            send(store, sender, recipient, client_id)
            for client_id, (sender, recipient) in enumerate(pairs, start=1)
        )
    )

    assert not any(result.duplicate for result in results)
    for user in users:
        involved = [
            (sender, recipient)
            for sender, recipient in pairs
            if user.id in (sender.id, recipient.id)
        ]
        entries = await read_whole_inbox(store, user)
        seqs = [entry.seq for entry in entries]
        assert seqs == list(range(1, len(involved) + 1)), f"inbox of {user.name}"
        assert len({entry.message.id for entry in entries}) == len(entries)
        assert await store.head_seq(user.id) == len(involved)

    # Each result's sequences point at its own message in both inboxes.
    inboxes = {user.id: await read_whole_inbox(store, user) for user in users}
    for result in results:
        message = result.message
        sender_entry = inboxes[message.sender][result.sender_seq - 1]
        recipient_entry = inboxes[message.recipient][result.recipient_seq - 1]
        assert sender_entry.message == message
        assert recipient_entry.message == message


# Reading the inbox.


async def test_read_empty_inbox(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    page = await store.read_inbox(alice.id, Seq(0), 10)

    assert page.entries == []
    assert page.has_more is False
    assert page.head_seq == 0
    assert await store.head_seq(alice.id) == 0


async def test_read_inbox_pages_same_timestamp(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await asyncio.gather(
        *(
            send(store, alice, bob, client_id, sent_at=5_000)
            for client_id in range(1000)
        )
    )

    async def read_all_pages() -> list[InboxEntry]:
        entries: list[InboxEntry] = []
        after_seq = Seq(0)
        for _ in range(1000 // 7 + 1):
            page = await store.read_inbox(bob.id, after_seq, 7)
            assert page.head_seq == 1000
            assert len(page.entries) == min(7, 1000 - after_seq)
            entries.extend(page.entries)
            if not page.has_more:
                break
            after_seq = page.entries[-1].seq
        return entries

    first_run = await read_all_pages()
    second_run = await read_all_pages()

    assert [entry.seq for entry in first_run] == list(range(1, 1001))
    assert len({entry.message.id for entry in first_run}) == 1000
    assert second_run == first_run


async def test_read_inbox_has_more_at_end(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    for client_id in range(1, 15):
        await send(store, alice, bob, client_id)

    full_pages = await store.read_inbox(bob.id, Seq(7), 7)
    short_page = await store.read_inbox(bob.id, Seq(10), 7)
    first_page = await store.read_inbox(bob.id, Seq(0), 7)

    assert [entry.seq for entry in full_pages.entries] == list(range(8, 15))
    assert full_pages.has_more is False
    assert [entry.seq for entry in short_page.entries] == [11, 12, 13, 14]
    assert short_page.has_more is False
    assert first_page.has_more is True


async def test_read_inbox_cursor_above_head(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    for client_id in range(1, 4):
        await send(store, alice, bob, client_id)

    page = await store.read_inbox(bob.id, Seq(10), 5)

    assert page.entries == []
    assert page.has_more is False
    assert page.head_seq == 3


async def test_read_inbox_limit_zero(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob, 1)

    page = await store.read_inbox(bob.id, Seq(0), 0)

    assert page.entries == []
    assert page.has_more is True
    assert page.head_seq == 1


async def test_read_inbox_contains_sent_messages(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    to_bob = await send(store, alice, bob, 1)
    from_carol = await send(store, carol, alice, 1)
    await send(store, bob, carol, 1)

    entries = await read_whole_inbox(store, alice)

    assert entries == [
        InboxEntry(Seq(1), to_bob.message, unread=0),
        InboxEntry(Seq(2), from_carol.message, unread=1),
    ]


# Reading a conversation.


async def read_whole_conversation(
    store: Store, user: User, peer: User, limit: int
) -> tuple[list[list[StoredMessage]], list[bool]]:
    pages: list[list[StoredMessage]] = []
    has_more_flags: list[bool] = []
    before_id: MessageId | None = None
    for _ in range(100):
        messages, has_more = await store.read_conversation(
            user.id, peer.id, before_id, limit
        )
        pages.append(messages)
        has_more_flags.append(has_more)
        if not has_more:
            break
        before_id = messages[-1].id
    return pages, has_more_flags


async def test_read_conversation_pages_backwards(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    expected: list[StoredMessage] = []
    for client_id in range(1, 56):
        sender, recipient = (alice, bob) if client_id % 3 else (bob, alice)
        expected.append((await send(store, sender, recipient, client_id)).message)
        # Messages of other conversations must not appear.
        await send(store, alice, carol, client_id)
        await send(store, alice, alice, client_id, device=LAPTOP)

    pages, has_more_flags = await read_whole_conversation(store, alice, bob, 10)

    assert [len(page) for page in pages] == [10, 10, 10, 10, 10, 5]
    assert has_more_flags == [True, True, True, True, True, False]
    messages = [message for page in pages for message in page]
    assert messages == list(reversed(expected))


async def test_read_conversation_same_from_both_sides(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    for client_id in range(1, 6):
        await send(store, alice, bob, client_id)
        await send(store, bob, alice, client_id)

    from_alice = await store.read_conversation(alice.id, bob.id, None, 100)
    from_bob = await store.read_conversation(bob.id, alice.id, None, 100)

    assert from_alice == from_bob
    assert len(from_alice[0]) == 10
    assert from_alice[1] is False


async def test_read_conversation_exact_page_has_no_more(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    for client_id in range(1, 11):
        await send(store, alice, bob, client_id)

    messages, has_more = await store.read_conversation(alice.id, bob.id, None, 10)

    assert len(messages) == 10
    assert has_more is False


async def test_read_conversation_before_oldest_is_empty(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob, 1)
    await send(store, alice, bob, 2)

    messages, has_more = await store.read_conversation(
        alice.id, bob.id, first.message.id, 10
    )

    assert messages == []
    assert has_more is False


async def test_read_conversation_with_self(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    note = await send(store, alice, alice, 1)
    await send(store, alice, bob, 2)

    messages, has_more = await store.read_conversation(alice.id, alice.id, None, 10)

    assert messages == [note.message]
    assert has_more is False


# Lifecycle.


async def test_reopen_keeps_data(store: Store, store_factory: StoreFactory) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    session = make_session(alice, b"\x08" * 32)
    await store.create_session(session)
    await store.set_cursor(bob.id, PHONE, Seq(1))
    sent = [await send(store, alice, bob, client_id) for client_id in (1, 2)]
    await store.close()

    reopened = store_factory()
    await reopened.open()
    try:
        assert await reopened.get_user(alice.id) == alice
        assert await reopened.get_user_by_name("bob") == bob
        assert await reopened.get_session(session.token_hash) == session
        assert await reopened.get_device(bob.id, PHONE) == DeviceState(
            cursor=Seq(1), last_client_id=ClientMessageId(0)
        )
        assert (await reopened.get_device(alice.id, PHONE)).last_client_id == 2
        entries = await read_whole_inbox(reopened, bob)
        assert [entry.message for entry in entries] == [r.message for r in sent]

        # Sequences continue, and messages stored before the reopen are deduplicated.
        repeat = await send(reopened, alice, bob, 2)
        assert repeat.duplicate is True
        assert repeat.message == sent[1].message
        after = await send(reopened, alice, bob, 3)
        assert after.recipient_seq == 3
        assert after.message.id > sent[1].message.id
    finally:
        await reopened.close()


async def test_repeated_reopen_keeps_schema(
    store: Store, store_factory: StoreFactory
) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob, 1)
    await store.close()

    for round_number in range(1, 4):
        reopened = store_factory()
        await reopened.open()
        try:
            assert await reopened.get_user_by_name("alice") == alice
            result = await send(reopened, alice, bob, 1 + round_number)
            assert result.recipient_seq == 1 + round_number
            assert await reopened.head_seq(bob.id) == 1 + round_number
        finally:
            await reopened.close()


async def test_close_finishes_queued_writes(
    store: Store, store_factory: StoreFactory
) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    tasks = [
        asyncio.create_task(send(store, alice, bob, client_id))
        for client_id in range(1, 51)
    ]
    await asyncio.sleep(0)  # let every task queue its write

    await store.close()
    results = await asyncio.gather(*tasks)

    assert sorted(result.recipient_seq for result in results) == list(range(1, 51))
    reopened = store_factory()
    await reopened.open()
    try:
        assert await reopened.head_seq(bob.id) == 50
    finally:
        await reopened.close()


async def test_close_twice_is_harmless(store: Store) -> None:
    await store.close()
    await store.close()


async def test_calls_after_close_raise(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await store.close()

    with pytest.raises(StoreError):
        await store.get_user(alice.id)
    with pytest.raises(StoreError):
        await store.read_inbox(bob.id, Seq(0), 10)
    with pytest.raises(StoreError):
        await store.create_user("carol", "hash", 1)
    with pytest.raises(StoreError):
        await send(store, alice, bob, 1)
    with pytest.raises(StoreError):
        await store.open()


async def test_calls_before_open_raise(store_factory: StoreFactory) -> None:
    store = store_factory()

    with pytest.raises(StoreError):
        await store.get_user(UserId(1))
    with pytest.raises(StoreError):
        await store.create_user("alice", "hash", 1)

    await store.close()


async def test_find_in_bodies_matches_type_and_bytes(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    needle = b"a" * 64
    reference = b'{"m":"' + needle + b'"}'
    media = 7
    await store.append_message(
        alice.id, PHONE, ClientMessageId(1), bob.id, media, reference, 1
    )
    await store.append_message(
        alice.id, PHONE, ClientMessageId(2), bob.id, TEXT, b"text " + needle, 2
    )
    await store.append_message(
        carol.id, PHONE, ClientMessageId(3), bob.id, media, b'{"m":"other"}', 3
    )
    await store.append_message(
        carol.id, PHONE, ClientMessageId(4), alice.id, media, needle, 4
    )

    found = await store.find_in_bodies(bob.id, media, needle, 10)
    assert found == [(alice.id, reference)]
    assert await store.find_in_bodies(carol.id, media, b"b" * 64, 10) == []
    # The sender's own copy is in the sender's inbox too.
    mine = await store.find_in_bodies(alice.id, media, needle, 10)
    assert sorted(mine) == sorted([(alice.id, reference), (carol.id, needle)])
    assert len(await store.find_in_bodies(alice.id, media, needle, 1)) == 1
