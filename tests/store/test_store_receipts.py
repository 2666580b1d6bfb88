"""Read positions and read counts every Store implementation must keep."""

from __future__ import annotations

import pytest

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    AppendResult,
    ConversationKey,
    GroupAppendResult,
    GroupNotice,
    NotMember,
    ReadCount,
    Role,
    Store,
    User,
)

PHONE = DeviceId("phone")
TEXT = 0
SYSTEM = 2
READ = 1
LIMIT = 100
NOW = 9_000


async def make_users(store: Store, *names: str) -> list[User]:
    return [await store.create_user(name, f"hash-{name}", 1_000) for name in names]


_client_ids: dict[UserId, int] = {}


def next_client_id(user: User) -> ClientMessageId:
    _client_ids[user.id] = _client_ids.get(user.id, 0) + 1
    return ClientMessageId(_client_ids[user.id])


async def send(store: Store, sender: User, recipient: User) -> AppendResult:
    return await store.append_message(
        sender.id, PHONE, next_client_id(sender), recipient.id, TEXT, b"hi", 5_000
    )


async def post(store: Store, sender: User, group_id: GroupId) -> GroupAppendResult:
    return await store.append_group_message(
        sender.id, PHONE, next_client_id(sender), group_id, TEXT, b"hi", 6_000
    )


def notice(actor: User) -> GroupNotice:
    return GroupNotice(
        actor=actor.id,
        content_type=SYSTEM,
        body=lambda group_id: f'{{"group":{group_id}}}'.encode(),
        sent_at=7_000,
    )


async def make_group(store: Store, owner: User, *members: User) -> GroupId:
    change = await store.create_group(
        "friends",
        owner.id,
        [m.id for m in members],
        2_000,
        max_members=LIMIT,
        notice=notice(owner),
    )
    return change.group.id


def peer(user: User) -> ConversationKey:
    return ConversationKey(peer=user.id)


async def unread_of(store: Store, user: User) -> list[int]:
    page = await store.list_conversations(user.id, None, LIMIT)
    return [c.unread for c in page.conversations]


# One-to-one conversations.


async def test_read_all_clears_unread(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob)
    last = await send(store, alice, bob)

    result = await store.mark_read(bob.id, peer(alice), None, NOW)

    assert result.read_id == last.message.id
    assert result.unread == 0
    assert result.notify == (alice.id,)
    assert result.entry is not None
    assert result.entry.seq == 3
    assert result.entry.unread == 0
    read = result.entry.message
    assert (read.change, read.target) == (READ, last.message.id)
    assert (read.sender, read.recipient, read.sent_at) == (bob.id, alice.id, NOW)
    assert await unread_of(store, bob) == [0]


async def test_read_entry_is_in_the_inbox(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob)
    await send(store, alice, bob)

    result = await store.mark_read(bob.id, peer(alice), first.message.id, NOW)

    page = await store.read_inbox(bob.id, Seq(2), LIMIT)
    assert result.entry is not None
    assert page.entries == [result.entry]
    assert page.entries[0].unread == 1
    assert page.head_seq == 3
    assert await store.head_seq(alice.id) == 2


async def test_read_part_leaves_later_unread(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob)
    await send(store, bob, alice)
    await send(store, alice, bob)
    await send(store, alice, bob)

    result = await store.mark_read(bob.id, peer(alice), first.message.id, NOW)

    assert result.read_id == first.message.id
    assert result.unread == 2
    conversation = (await store.list_conversations(bob.id, None, LIMIT)).conversations
    assert conversation[0].read_id == first.message.id
    assert conversation[0].unread == 2


async def test_read_never_moves_back(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    first = await send(store, alice, bob)
    second = await send(store, alice, bob)
    await store.mark_read(bob.id, peer(alice), None, NOW)

    result = await store.mark_read(bob.id, peer(alice), first.message.id, NOW + 1)

    assert result.entry is None
    assert result.read_id == second.message.id
    assert result.unread == 0
    assert result.notify == ()
    assert await store.head_seq(bob.id) == 3


async def test_read_beyond_newest_stops_there(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    last = await send(store, alice, bob)

    result = await store.mark_read(bob.id, peer(alice), MessageId(2**63 - 1), NOW)

    assert result.read_id == last.message.id
    assert result.unread == 0


async def test_read_without_messages_changes_nothing(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    result = await store.mark_read(bob.id, peer(alice), None, NOW)

    assert result.entry is None
    assert result.read_id == 0
    assert result.unread == 0
    assert await store.head_seq(bob.id) == 0


async def test_peer_sees_read_position_in_list(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob)

    await store.mark_read(bob.id, peer(alice), None, NOW)

    [conversation] = (
        await store.list_conversations(alice.id, None, LIMIT)
    ).conversations
    assert conversation.peer_read_id == sent.message.id
    assert conversation.last.message.id == sent.message.id


async def test_read_entries_stay_out_of_history(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    sent = await send(store, alice, bob)
    await store.mark_read(bob.id, peer(alice), None, NOW)

    messages, has_more = await store.read_conversation(bob.id, alice.id, None, LIMIT)

    assert [m.id for m in messages] == [sent.message.id]
    assert has_more is False


async def test_note_to_self_read_notifies_nobody(store: Store) -> None:
    (alice,) = await make_users(store, "alice")
    await send(store, alice, alice)

    result = await store.mark_read(alice.id, peer(alice), None, NOW)

    assert result.entry is not None
    assert result.notify == ()
    assert result.unread == 0


async def test_counts_after_read_include_new_messages(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob)
    await store.mark_read(bob.id, peer(alice), None, NOW)

    result = await send(store, alice, bob)

    assert result.recipient_unread == 1
    assert await unread_of(store, bob) == [1]


# Groups.


async def test_group_read_notifies_senders(store: Store) -> None:
    alice, bob, carol, dave = await make_users(store, "alice", "bob", "carol", "dave")
    group_id = await make_group(store, alice, bob, carol, dave)
    await post(store, alice, group_id)
    await post(store, bob, group_id)
    await post(store, alice, group_id)
    await post(store, dave, group_id)

    result = await store.mark_read(dave.id, ConversationKey(group=group_id), None, NOW)

    assert sorted(result.notify) == sorted([alice.id, bob.id])
    assert result.unread == 0
    assert await unread_of(store, carol) == [4]
    assert result.entry is not None
    assert result.entry.message.group_id == group_id
    assert result.entry.message.recipient == 0
    messages, _ = await store.read_group_history(group_id, None, LIMIT)
    assert all(m.change == 0 for m in messages)


async def test_former_member_can_read(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    await post(store, alice, group_id)
    await store.remove_member(group_id, bob.id, notice=notice(alice))

    result = await store.mark_read(bob.id, ConversationKey(group=group_id), None, NOW)

    assert result.unread == 0
    assert result.entry is not None


async def test_member_without_messages_can_read(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)
    sent = await post(store, alice, group_id)
    await store.add_members(group_id, [carol.id], Role.MEMBER, 3_000, max_members=LIMIT)

    result = await store.mark_read(carol.id, ConversationKey(group=group_id), None, NOW)

    assert result.entry is None
    assert result.read_id == sent.message.id
    assert result.unread == 0
    assert await store.head_seq(carol.id) == 0


async def test_stranger_cannot_read_group(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice)

    with pytest.raises(NotMember):
        await store.mark_read(bob.id, ConversationKey(group=group_id), None, NOW)


async def test_read_counts(store: Store) -> None:
    alice, bob, carol, dave = await make_users(store, "alice", "bob", "carol", "dave")
    group_id = await make_group(store, alice, bob, carol)
    first = await post(store, alice, group_id)
    second = await post(store, bob, group_id)
    await store.mark_read(bob.id, ConversationKey(group=group_id), None, NOW)
    await store.mark_read(
        carol.id, ConversationKey(group=group_id), first.message.id, NOW
    )
    change = await store.add_members(
        group_id, [dave.id], Role.MEMBER, 3_000, max_members=LIMIT, notice=notice(alice)
    )
    assert change.notice is not None

    counts = await store.group_read_counts(
        group_id,
        [second.message.id, first.message.id, change.notice.message.id, 99_999],
    )

    # Dave joined after both; the notice and the unknown id are left out.
    assert counts == [
        ReadCount(second.message.id, read=0, members=2),
        ReadCount(first.message.id, read=2, members=2),
    ]


async def test_read_counts_of_other_group_are_empty(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    other = await make_group(store, bob, alice)
    sent = await post(store, alice, group_id)

    assert await store.group_read_counts(other, [sent.message.id]) == []
    assert await store.group_read_counts(group_id, []) == []


async def test_out_of_range_ids(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    sent = await post(store, alice, group_id)
    huge = 2**64

    page = await store.list_conversations(UserId(huge), None, LIMIT)
    assert page.conversations == []
    page = await store.list_conversations(bob.id, MessageId(huge), LIMIT)
    assert len(page.conversations) == 1
    page = await store.list_conversations(bob.id, MessageId(-huge), LIMIT)
    assert page.conversations == []
    assert await store.group_read_counts(GroupId(huge), [sent.message.id]) == []
    counts = await store.group_read_counts(group_id, [MessageId(huge), sent.message.id])
    assert [count.message_id for count in counts] == [sent.message.id]
    with pytest.raises(ValueError, match="user_id"):
        await store.mark_read(UserId(huge), ConversationKey(group=group_id), None, NOW)
    with pytest.raises(ValueError, match="limit -1"):
        await store.list_conversations(bob.id, None, -1)

    result = await store.mark_read(
        bob.id, ConversationKey(group=group_id), MessageId(huge), NOW
    )
    assert result.read_id == sent.message.id
