"""Recall, edit and delete-for-me, through the Store interface."""

from __future__ import annotations

import pytest

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    AppendResult,
    ConversationKey,
    GroupAppendResult,
    GroupNotice,
    InboxEntry,
    MessageNotFound,
    MessageRecalled,
    Role,
    Store,
    User,
)

PHONE = DeviceId("phone")
TEXT = 0
SYSTEM = 2
RECALL, EDIT, DELETE = 2, 3, 4
LIMIT = 100
NOW = 9_000


async def make_users(store: Store, *names: str) -> list[User]:
    return [await store.create_user(name, f"hash-{name}", 1_000) for name in names]


_client_ids: dict[UserId, int] = {}


def next_client_id(user: User) -> ClientMessageId:
    _client_ids[user.id] = _client_ids.get(user.id, 0) + 1
    return ClientMessageId(_client_ids[user.id])


async def send(
    store: Store, sender: User, recipient: User, text: str = "hi"
) -> AppendResult:
    return await store.append_message(
        sender.id, PHONE, next_client_id(sender), recipient.id, TEXT, text.encode(), 5
    )


async def post(store: Store, sender: User, group_id: GroupId) -> GroupAppendResult:
    return await store.append_group_message(
        sender.id, PHONE, next_client_id(sender), group_id, TEXT, b"hi all", 6
    )


def notice(actor: User) -> GroupNotice:
    return GroupNotice(
        actor=actor.id,
        content_type=SYSTEM,
        body=lambda group_id: f'{{"group":{group_id}}}'.encode(),
        sent_at=7,
    )


async def make_group(store: Store, owner: User, *members: User) -> GroupId:
    change = await store.create_group(
        "friends",
        owner.id,
        [m.id for m in members],
        2,
        max_members=LIMIT,
        notice=notice(owner),
    )
    return change.group.id


async def inbox(store: Store, user: User) -> list[InboxEntry]:
    return (await store.read_inbox(user.id, Seq(0), LIMIT)).entries


async def unread(store: Store, user: User) -> int:
    return (await store.list_conversations(user.id, None, LIMIT)).total_unread


# Who holds a message.


async def test_get_message_for_holders_only(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    sent = await send(store, alice, bob)

    for user in (alice, bob):
        held = await store.get_message(sent.message.id, user.id)
        assert held is not None
        assert held.message == sent.message
        assert held.deleted is False
        assert held.notice is False
    assert await store.get_message(sent.message.id, carol.id) is None
    assert await store.get_message(MessageId(999), alice.id) is None


async def test_change_entries_are_not_messages(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob)
    read = await store.mark_read(bob.id, ConversationKey(peer=alice.id), None, NOW)
    assert read.entry is not None

    assert await store.get_message(read.entry.message.id, bob.id) is None


async def test_group_holders_joined_before(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)
    sent = await post(store, alice, group_id)
    await store.add_members(
        group_id, [carol.id], Role.MEMBER, 3, max_members=LIMIT, notice=notice(alice)
    )

    assert await store.get_message(sent.message.id, bob.id) is not None
    assert await store.get_message(sent.message.id, carol.id) is None
    created = (await inbox(store, bob))[0].message
    held = await store.get_message(created.id, bob.id)
    assert held is not None
    assert held.notice is True


# Recall.


async def test_recall_reaches_both_inboxes(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob)
    sent = await send(store, alice, bob, "oops")

    result = await store.recall_message(alice.id, sent.message.id, NOW)

    assert set(result.entries) == {alice.id, bob.id}
    assert result.target.body == b""
    assert result.target.recalled_at == NOW
    bob_entry = result.entries[bob.id]
    change = bob_entry.message
    assert (change.change, change.target) == (RECALL, sent.message.id)
    assert (change.sender, change.recipient, change.sent_at) == (alice.id, bob.id, NOW)
    assert bob_entry.unread == 1
    assert result.entries[alice.id].unread == 0
    assert (await inbox(store, bob))[-1] == bob_entry
    assert await unread(store, bob) == 1


async def test_recalled_message_syncs_recalled(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob, "secret")

    await store.recall_message(alice.id, sent.message.id, NOW)

    original = (await inbox(store, bob))[0].message
    assert original.id == sent.message.id
    assert original.body == b""
    assert original.recalled_at == NOW
    [conversation] = (await store.list_conversations(bob.id, None, LIMIT)).conversations
    assert conversation.last.message.recalled_at == NOW
    history, _ = await store.read_conversation(bob.id, alice.id, None, LIMIT)
    assert [m.body for m in history] == [b""]


async def test_recall_of_read_message_keeps_count(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob)
    await store.mark_read(bob.id, ConversationKey(peer=alice.id), None, NOW)

    result = await store.recall_message(alice.id, sent.message.id, NOW + 1)

    assert result.entries[bob.id].unread == 0
    assert await unread(store, bob) == 0


async def test_recall_twice_changes_nothing(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob)
    await store.recall_message(alice.id, sent.message.id, NOW)

    again = await store.recall_message(alice.id, sent.message.id, NOW + 1)

    assert again.entries == {}
    assert again.target.recalled_at == NOW
    assert await store.head_seq(bob.id) == 2


async def test_recall_empties_earlier_edits(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob, "first")
    edit = await store.edit_message(alice.id, sent.message.id, b"second", NOW)

    await store.recall_message(alice.id, sent.message.id, NOW + 1)

    entries = await inbox(store, bob)
    edit_entry = entries[1]
    assert edit_entry.message.id == edit.entries[bob.id].message.id
    assert edit_entry.message.change == EDIT
    assert edit_entry.message.body == b""


async def test_group_recall_reaches_current_holders(store: Store) -> None:
    alice, bob, carol, dave = await make_users(store, "alice", "bob", "carol", "dave")
    group_id = await make_group(store, alice, bob, carol)
    sent = await post(store, alice, group_id)
    await store.remove_member(group_id, carol.id, notice=notice(alice))
    await store.add_members(
        group_id, [dave.id], Role.MEMBER, 3, max_members=LIMIT, notice=notice(alice)
    )

    edited = await store.edit_message(alice.id, sent.message.id, b"new", NOW)
    result = await store.recall_message(alice.id, sent.message.id, NOW)

    # Carol was removed after the message: she holds it but hears nothing
    # more of the group. Dave joined later and never held it.
    assert set(edited.entries) == {alice.id, bob.id}
    assert set(result.entries) == {alice.id, bob.id}
    assert result.entries[bob.id].message.group_id == group_id
    assert result.entries[bob.id].message.recipient == 0
    assert await unread(store, bob) == 0
    assert all(entry.message.change == 0 for entry in await inbox(store, carol))


async def test_stranger_cannot_recall(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    sent = await send(store, alice, bob)

    with pytest.raises(MessageNotFound):
        await store.recall_message(carol.id, sent.message.id, NOW)


# Edit.


async def test_edit_reaches_both_inboxes(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob, "helo")

    result = await store.edit_message(alice.id, sent.message.id, b"hello", NOW)

    assert result.target.body == b"hello"
    assert result.target.edited_at == NOW
    assert set(result.entries) == {alice.id, bob.id}
    change = result.entries[bob.id].message
    assert (change.change, change.target, change.body) == (
        EDIT,
        sent.message.id,
        b"hello",
    )
    assert change.content_type == TEXT
    assert result.entries[bob.id].unread == 1
    original = (await inbox(store, bob))[0].message
    assert (original.body, original.edited_at) == (b"hello", NOW)
    history, _ = await store.read_conversation(alice.id, bob.id, None, LIMIT)
    assert [m.body for m in history] == [b"hello"]


async def test_edit_after_recall_raises(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob)
    await store.recall_message(alice.id, sent.message.id, NOW)

    with pytest.raises(MessageRecalled):
        await store.edit_message(alice.id, sent.message.id, b"too late", NOW + 1)


# Delete for me.


async def test_delete_for_me_touches_one_inbox(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob, "one")
    second = await send(store, alice, bob, "two")

    result = await store.delete_message_for(bob.id, second.message.id, NOW)

    [(user, entry)] = result.entries.items()
    assert user == bob.id
    assert (entry.message.change, entry.message.target) == (DELETE, second.message.id)
    assert (entry.message.sender, entry.message.recipient) == (bob.id, alice.id)
    assert entry.unread == 1
    assert await store.head_seq(alice.id) == 2
    entries = await inbox(store, bob)
    assert entries[1].deleted is True
    assert entries[0].deleted is False
    history, _ = await store.read_conversation(bob.id, alice.id, None, LIMIT)
    assert [m.id for m in history] == [first.message.id]
    alice_history, _ = await store.read_conversation(alice.id, bob.id, None, LIMIT)
    assert len(alice_history) == 2


async def test_delete_last_shows_previous(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob, "one")
    second = await send(store, bob, alice, "two")

    await store.delete_message_for(bob.id, second.message.id, NOW)

    [conversation] = (await store.list_conversations(bob.id, None, LIMIT)).conversations
    assert conversation.last.message.id == first.message.id
    assert conversation.last.seq == 1
    assert conversation.unread == 1
    [alice_side] = (await store.list_conversations(alice.id, None, LIMIT)).conversations
    assert alice_side.last.message.id == second.message.id


async def test_delete_every_message_hides_conversation(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob)

    await store.delete_message_for(bob.id, sent.message.id, NOW)

    page = await store.list_conversations(bob.id, None, LIMIT)
    assert page.conversations == []
    assert page.total_unread == 0


async def test_delete_twice_changes_nothing(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob)
    await store.delete_message_for(bob.id, sent.message.id, NOW)

    again = await store.delete_message_for(bob.id, sent.message.id, NOW + 1)

    assert again.entries == {}
    held = await store.get_message(sent.message.id, bob.id)
    assert held is not None
    assert held.deleted is True


async def test_deleted_group_message_left_out_of_history(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    sent = await post(store, alice, group_id)

    await store.delete_message_for(bob.id, sent.message.id, NOW)

    mine, _ = await store.read_group_history(group_id, None, LIMIT, viewer=bob.id)
    theirs, _ = await store.read_group_history(group_id, None, LIMIT, viewer=alice.id)
    assert sent.message.id not in [m.id for m in mine]
    assert sent.message.id in [m.id for m in theirs]


async def test_read_skips_recalled_and_deleted(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob)
    recalled = await send(store, alice, bob)
    deleted = await send(store, alice, bob)
    await send(store, alice, bob)
    await store.recall_message(alice.id, recalled.message.id, NOW)
    await store.delete_message_for(bob.id, deleted.message.id, NOW)
    assert await unread(store, bob) == 2

    result = await store.mark_read(
        bob.id, ConversationKey(peer=alice.id), first.message.id, NOW
    )

    assert result.unread == 1


async def test_out_of_range_ids(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    sent = await post(store, alice, group_id)
    huge = 2**64

    assert await store.get_message(MessageId(huge), alice.id) is None
    assert await store.get_message(sent.message.id, UserId(huge)) is None
    with pytest.raises(ValueError, match="message_id"):
        await store.recall_message(alice.id, MessageId(huge), NOW)
    with pytest.raises(ValueError, match="actor"):
        await store.edit_message(UserId(-huge), sent.message.id, b"x", NOW)
    with pytest.raises(ValueError, match="now"):
        await store.delete_message_for(bob.id, sent.message.id, huge)
    history, _ = await store.read_group_history(
        group_id, None, LIMIT, viewer=UserId(huge)
    )
    assert sent.message.id in [m.id for m in history]
