"""Conversation lists every Store implementation must keep, through the interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, UserId
from switchboard.store.base import (
    AppendResult,
    Conversation,
    ConversationKey,
    ConversationPage,
    GroupAppendResult,
    GroupNotice,
    Role,
    Store,
    User,
)

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory

PHONE = DeviceId("phone")
TEXT = 0
SYSTEM = 2
LIMIT = 100


async def make_users(store: Store, *names: str) -> list[User]:
    return [await store.create_user(name, f"hash-{name}", 1_000) for name in names]


_client_ids: dict[UserId, int] = {}


def next_client_id(user: User) -> ClientMessageId:
    _client_ids[user.id] = _client_ids.get(user.id, 0) + 1
    return ClientMessageId(_client_ids[user.id])


async def send(store: Store, sender: User, recipient: User, text: str) -> AppendResult:
    return await store.append_message(
        sender.id,
        PHONE,
        next_client_id(sender),
        recipient.id,
        TEXT,
        text.encode(),
        5_000,
    )


async def post(
    store: Store, sender: User, group_id: GroupId, text: str
) -> GroupAppendResult:
    return await store.append_group_message(
        sender.id,
        PHONE,
        next_client_id(sender),
        group_id,
        TEXT,
        text.encode(),
        6_000,
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


async def conversations(store: Store, user: User) -> ConversationPage:
    return await store.list_conversations(user.id, None, LIMIT)


async def only(store: Store, user: User) -> Conversation:
    page = await conversations(store, user)
    assert len(page.conversations) == 1, page
    return page.conversations[0]


def peer(user: User) -> ConversationKey:
    return ConversationKey(peer=user.id)


def group(group_id: GroupId) -> ConversationKey:
    return ConversationKey(group=group_id)


# One-to-one conversations.


async def test_new_user_has_no_conversations(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    page = await conversations(store, alice)

    assert page == ConversationPage([], has_more=False, head_seq=0, total_unread=0)


async def test_received_messages_are_unread(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob, "one")
    await send(store, alice, bob, "two")

    result = await send(store, alice, bob, "three")

    conversation = await only(store, bob)
    assert conversation.key == peer(alice)
    assert conversation.name == "alice"
    assert conversation.unread == 3
    assert conversation.read_id == 0
    assert conversation.peer_read_id == 0
    assert conversation.last.message == result.message
    assert conversation.last.seq == result.recipient_seq
    assert result.recipient_unread == 3


async def test_own_messages_are_not_unread(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob, "hello")

    reply = await send(store, bob, alice, "hi")

    bob_side = await only(store, bob)
    assert bob_side.unread == 1
    assert bob_side.last.message.id == reply.message.id
    alice_side = await only(store, alice)
    assert alice_side.key == peer(bob)
    assert alice_side.unread == 1
    assert alice_side.name == "bob"
    assert reply.sender_unread == 1


async def test_note_to_self_is_never_unread(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    result = await send(store, alice, alice, "remember the milk")

    conversation = await only(store, alice)
    assert conversation.key == peer(alice)
    assert conversation.unread == 0
    assert conversation.last.message.id == result.message.id
    assert result.recipient_unread == 0


async def test_list_is_ordered_by_last_message(store: Store) -> None:
    alice, bob, carol, dave = await make_users(store, "alice", "bob", "carol", "dave")
    await send(store, bob, alice, "from bob")
    await send(store, carol, alice, "from carol")
    await send(store, dave, alice, "from dave")
    await send(store, alice, bob, "to bob")

    page = await conversations(store, alice)

    assert [c.key for c in page.conversations] == [peer(bob), peer(dave), peer(carol)]
    assert [c.unread for c in page.conversations] == [1, 1, 1]
    assert page.total_unread == 3
    assert page.head_seq == 4
    assert page.has_more is False


async def test_list_pages_with_before(store: Store) -> None:
    users = await make_users(store, "alice", "bob", "carol", "dave", "erin")
    alice, others = users[0], users[1:]
    for user in others:
        await send(store, user, alice, f"from {user.name}")

    first = await store.list_conversations(alice.id, None, 3)
    last_id = first.conversations[-1].last.message.id
    second = await store.list_conversations(alice.id, last_id, 3)

    assert [c.name for c in first.conversations] == ["erin", "dave", "carol"]
    assert first.has_more is True
    assert [c.name for c in second.conversations] == ["bob"]
    assert second.has_more is False
    assert first.total_unread == second.total_unread == 4


async def test_peer_read_id_starts_at_zero(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    await send(store, alice, bob, "hello")

    conversation = await only(store, alice)

    assert conversation.peer_read_id == MessageId(0)


# Group conversations.


async def test_group_notice_is_not_unread(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    group_id = await make_group(store, alice, bob)

    conversation = await only(store, bob)
    assert conversation.key == group(group_id)
    assert conversation.name == "friends"
    assert conversation.unread == 0
    assert conversation.last.message.content_type == SYSTEM


async def test_group_messages_of_others_are_unread(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob, carol)
    await post(store, alice, group_id, "hello all")

    result = await post(store, bob, group_id, "hi alice")

    assert (await only(store, alice)).unread == 1
    assert (await only(store, bob)).unread == 1
    assert (await only(store, carol)).unread == 2
    assert result.unread == {alice.id: 1, bob.id: 1, carol.id: 2}
    assert (await only(store, carol)).last.message.id == result.message.id


async def test_member_added_later_counts_only_new_messages(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)
    await post(store, bob, group_id, "before carol")

    change = await store.add_members(
        group_id, [carol.id], Role.MEMBER, 3_000, max_members=LIMIT, notice=notice(bob)
    )
    await post(store, alice, group_id, "welcome carol")

    conversation = await only(store, carol)
    assert conversation.unread == 1
    assert change.notice is not None
    assert conversation.read_id == change.notice.message.id - 1


async def test_removed_member_keeps_last_notice(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    await post(store, alice, group_id, "one")
    change = await store.remove_member(group_id, bob.id, notice=notice(alice))
    assert change.notice is not None

    await post(store, alice, group_id, "after bob left")

    conversation = await only(store, bob)
    assert conversation.last.message.id == change.notice.message.id
    assert conversation.unread == 1


async def test_readded_member_starts_with_nothing_unread(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    await post(store, alice, group_id, "before")
    await store.remove_member(group_id, bob.id, notice=notice(alice))
    await post(store, alice, group_id, "while away")

    await store.add_members(
        group_id, [bob.id], Role.MEMBER, 4_000, max_members=LIMIT, notice=notice(alice)
    )

    conversation = await only(store, bob)
    assert conversation.unread == 0
    result = await post(store, alice, group_id, "welcome back")
    assert (await only(store, bob)).unread == 1
    assert result.unread[bob.id] == 1


async def test_readded_without_notice_has_nothing_unread(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    await post(store, alice, group_id, "unread")
    await store.remove_member(group_id, bob.id)
    away = await post(store, alice, group_id, "while away")

    await store.add_members(group_id, [bob.id], Role.MEMBER, 4_000, max_members=LIMIT)

    conversation = await only(store, bob)
    assert conversation.unread == 0
    assert conversation.read_id == away.message.id
    assert (await conversations(store, bob)).total_unread == 0


async def test_groups_and_peers_share_one_list(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    await send(store, bob, alice, "direct")
    group_id = await make_group(store, carol, alice)
    await post(store, carol, group_id, "in the group")

    page = await conversations(store, alice)

    assert [c.key for c in page.conversations] == [group(group_id), peer(bob)]
    assert [c.name for c in page.conversations] == ["friends", "bob"]
    assert page.total_unread == 2


async def test_unread_survives_reopen(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open()
    try:
        alice, bob = await make_users(store, "alice", "bob")
        await send(store, alice, bob, "one")
        await send(store, alice, bob, "two")
    finally:
        await store.close()

    reopened = store_factory()
    await reopened.open()
    try:
        conversation = await only(reopened, bob)
        assert conversation.unread == 2
        assert (await conversations(reopened, bob)).total_unread == 2
    finally:
        await reopened.close()
