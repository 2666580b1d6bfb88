"""Group behaviour every Store implementation must have, through the interface."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import pytest

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    AlreadyMember,
    GroupAppendResult,
    GroupFull,
    GroupNotFound,
    GroupNotice,
    InboxEntry,
    InvalidMention,
    Member,
    NotMember,
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


async def make_group(store: Store, owner: User, *members: User) -> GroupId:
    change = await store.create_group(
        "friends", owner.id, [m.id for m in members], 2_000, max_members=LIMIT
    )
    return change.group.id


async def post(
    store: Store,
    sender: User,
    group_id: GroupId,
    client_id: int,
    *,
    mentions: tuple[UserId, ...] = (),
) -> GroupAppendResult:
    return await store.append_group_message(
        sender.id,
        PHONE,
        ClientMessageId(client_id),
        group_id,
        TEXT,
        f"message {client_id}".encode(),
        5_000,
        mentions,
    )


def notice(actor: User, event: str) -> GroupNotice:
    return GroupNotice(
        actor=actor.id,
        content_type=SYSTEM,
        body=lambda group_id: f"{event} {group_id}".encode(),
        sent_at=6_000,
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


# Creating and reading groups.


async def test_count_groups(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    assert await store.count_groups() == 0

    for name in ("one", "two", "three"):
        await store.create_group(name, alice.id, [bob.id], 2_000, max_members=LIMIT)

    assert await store.count_groups() == 3


async def test_create_group_makes_creator_owner(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")

    change = await store.create_group(
        "friends",
        alice.id,
        [bob.id, carol.id, bob.id, alice.id],
        2_000,
        max_members=LIMIT,
    )

    group = change.group
    assert group.name == "friends"
    assert group.created_by == alice.id
    assert group.created_at == 2_000
    assert group.mode == "write"
    assert change.notice is None
    assert await store.get_group(group.id) == group
    assert await store.list_members(group.id) == [
        Member(alice.id, Role.OWNER, 2_000),
        Member(bob.id, Role.MEMBER, 2_000),
        Member(carol.id, Role.MEMBER, 2_000),
    ]


async def test_unknown_group_reads_empty(store: Store) -> None:
    assert await store.get_group(GroupId(42)) is None
    assert await store.list_members(GroupId(42)) == []
    assert await store.read_group_history(GroupId(42), None, 10) == ([], False)


async def test_groups_of_lists_memberships(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    first = await make_group(store, alice, bob)
    second = await make_group(store, carol, alice)

    assert [g.id for g in await store.groups_of(alice.id)] == [first, second]
    assert [g.id for g in await store.groups_of(bob.id)] == [first]
    assert [g.id for g in await store.groups_of(carol.id)] == [second]


async def test_create_group_above_max_raises(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")

    with pytest.raises(GroupFull) as caught:
        await store.create_group(
            "big", alice.id, [bob.id, carol.id], 2_000, max_members=2
        )

    assert caught.value.size == 3
    assert caught.value.max_members == 2
    assert await store.groups_of(alice.id) == []


async def test_create_group_notice_reaches_every_member(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")

    change = await store.create_group(
        "friends",
        alice.id,
        [bob.id],
        2_000,
        max_members=LIMIT,
        notice=notice(alice, "created"),
    )

    assert change.notice is not None
    message = change.notice.message
    assert message.body == f"created {change.group.id}".encode()
    assert message.content_type == SYSTEM
    assert message.group_id == change.group.id
    assert message.recipient == 0
    assert change.notice.seqs == {alice.id: 1, bob.id: 1}
    for user in (alice, bob):
        entries = await read_whole_inbox(store, user)
        assert [entry.message for entry in entries] == [message]


# Membership changes.


async def test_add_members_with_role(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice)

    change = await store.add_members(
        group_id,
        [bob.id, carol.id],
        Role.ADMIN,
        3_000,
        max_members=LIMIT,
        notice=notice(alice, "added"),
    )

    assert change.notice is not None
    assert set(change.notice.seqs) == {alice.id, bob.id, carol.id}
    members = await store.list_members(group_id)
    assert Member(bob.id, Role.ADMIN, 3_000) in members
    assert Member(carol.id, Role.ADMIN, 3_000) in members


async def test_add_existing_member_raises(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)

    with pytest.raises(AlreadyMember):
        await store.add_members(
            group_id, [carol.id, bob.id], Role.MEMBER, 3_000, max_members=LIMIT
        )

    assert len(await store.list_members(group_id)) == 2


async def test_add_members_above_max_raises(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)

    with pytest.raises(GroupFull):
        await store.add_members(group_id, [carol.id], Role.MEMBER, 3_000, max_members=2)

    assert len(await store.list_members(group_id)) == 2


async def test_add_members_to_unknown_group_raises(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    with pytest.raises(GroupNotFound):
        await store.add_members(
            GroupId(42), [alice.id], Role.MEMBER, 3_000, max_members=LIMIT
        )


async def test_remove_member_gets_notice_last(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob, carol)
    await post(store, alice, group_id, 1)

    change = await store.remove_member(
        group_id, bob.id, notice=notice(alice, "removed")
    )
    await post(store, alice, group_id, 2)
    await post(store, carol, group_id, 1)

    assert change.notice is not None
    assert bob.id in change.notice.seqs
    bob_entries = await read_whole_inbox(store, bob)
    assert [e.message.body for e in bob_entries] == [
        b"message 1",
        f"removed {group_id}".encode(),
    ]
    carol_entries = await read_whole_inbox(store, carol)
    assert len(carol_entries) == 4
    assert [m.user_id for m in await store.list_members(group_id)] == [
        alice.id,
        carol.id,
    ]
    assert await store.groups_of(bob.id) == []


async def test_removed_member_cannot_post(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    await store.remove_member(group_id, bob.id)

    with pytest.raises(NotMember):
        await post(store, bob, group_id, 1)

    assert await read_whole_inbox(store, alice) == []
    assert (await store.get_device(bob.id, PHONE)).last_client_id == 0


async def test_remove_non_member_raises(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice)

    with pytest.raises(NotMember):
        await store.remove_member(group_id, bob.id)
    with pytest.raises(GroupNotFound):
        await store.remove_member(GroupId(42), bob.id)


async def test_set_role_and_rename(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)

    await store.set_role(group_id, bob.id, Role.ADMIN)
    change = await store.rename_group(
        group_id, "best friends", notice=notice(bob, "renamed")
    )

    assert Member(bob.id, Role.ADMIN, 2_000) in await store.list_members(group_id)
    assert change.group.name == "best friends"
    group = await store.get_group(group_id)
    assert group is not None
    assert group.name == "best friends"
    assert change.notice is not None
    assert change.notice.message.sender == bob.id


async def test_set_role_of_non_member_raises(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice)

    with pytest.raises(NotMember):
        await store.set_role(group_id, bob.id, Role.ADMIN)
    with pytest.raises(GroupNotFound):
        await store.rename_group(GroupId(42), "x")


async def test_notice_from_non_member_raises(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)

    with pytest.raises(NotMember):
        await store.rename_group(group_id, "x", notice=notice(carol, "renamed"))

    group = await store.get_group(group_id)
    assert group is not None
    assert group.name == "friends"


# Group messages.


async def test_group_message_reaches_every_inbox(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    await store.append_message(
        bob.id, PHONE, ClientMessageId(1), carol.id, TEXT, b"1:1", 4_000
    )
    group_id = await make_group(store, alice, bob, carol)

    result = await post(store, alice, group_id, 1, mentions=(carol.id, bob.id))

    assert result.duplicate is False
    assert result.seqs == {alice.id: 1, bob.id: 2, carol.id: 2}
    message = result.message
    assert message.group_id == group_id
    assert message.recipient == 0
    assert message.mentions == (carol.id, bob.id)
    for user in (alice, bob, carol):
        entries = await read_whole_inbox(store, user)
        unread = 0 if user is alice else 1
        assert entries[-1] == InboxEntry(result.seqs[user.id], message, unread)
        assert result.unread[user.id] == unread
    assert (await store.get_device(alice.id, PHONE)).last_client_id == 1


async def test_group_message_repeat_is_duplicate(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    first = await post(store, alice, group_id, 7)

    repeat = await post(store, alice, group_id, 7)

    assert repeat.duplicate is True
    assert repeat.message == first.message
    assert repeat.seqs == {alice.id: first.seqs[alice.id]}
    assert len(await read_whole_inbox(store, bob)) == 1


async def test_group_client_id_shared_with_direct(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    first = await post(store, alice, group_id, 3)

    repeat = await store.append_message(
        alice.id, PHONE, ClientMessageId(3), bob.id, TEXT, b"other", 5_000
    )

    assert repeat.duplicate is True
    assert repeat.message == first.message
    assert repeat.sender_seq == first.seqs[alice.id]


async def test_group_message_to_unknown_group_raises(store: Store) -> None:
    (alice,) = await make_users(store, "alice")

    with pytest.raises(GroupNotFound):
        await post(store, alice, GroupId(42), 1)


async def test_mention_of_non_member_raises(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob)

    with pytest.raises(InvalidMention) as caught:
        await post(store, alice, group_id, 1, mentions=(bob.id, carol.id))

    assert caught.value.user_id == carol.id
    assert await read_whole_inbox(store, bob) == []


async def test_member_added_later_gets_later_messages(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice)
    await post(store, alice, group_id, 1)

    await store.add_members(group_id, [bob.id], Role.MEMBER, 3_000, max_members=9)
    later = await post(store, alice, group_id, 2)

    assert [e.message for e in await read_whole_inbox(store, bob)] == [later.message]


async def test_concurrent_group_appends_keep_seqs_gapless(store: Store) -> None:
    users = await make_users(store, "u0", "u1", "u2", "u3", "u4")
    first = await make_group(store, users[0], users[1], users[2])
    second = await make_group(store, users[2], users[3], users[4])
    groups = {first: users[:3], second: users[2:]}
    rng = random.Random(2)

    async def one(client_id: int) -> None:
        if rng.random() < 0.3:
            sender, recipient = rng.sample(users, 2)
            await store.append_message(
                sender.id,
                PHONE,
                ClientMessageId(client_id),
                recipient.id,
                TEXT,
                b"direct",
                5_000,
            )
            return
        group_id = rng.choice(list(groups))
        await post(store, rng.choice(groups[group_id]), group_id, client_id)

    await asyncio.gather(*(one(client_id) for client_id in range(1, 301)))

    for user in users:
        entries = await read_whole_inbox(store, user)
        seqs = [entry.seq for entry in entries]
        assert seqs == list(range(1, len(entries) + 1)), f"inbox of {user.name}"
        assert await store.head_seq(user.id) == len(entries)


async def test_concurrent_removal_and_messages_ordered(store: Store) -> None:
    alice, bob, carol = await make_users(store, "alice", "bob", "carol")
    group_id = await make_group(store, alice, bob, carol)

    async def remove_bob() -> None:
        await asyncio.sleep(0)
        await store.remove_member(group_id, bob.id, notice=notice(alice, "removed"))

    results = await asyncio.gather(
        *(post(store, carol, group_id, client_id) for client_id in range(1, 41)),
        remove_bob(),
    )

    appended = [r for r in results if isinstance(r, GroupAppendResult)]
    bob_bodies = [e.message.body for e in await read_whole_inbox(store, bob)]
    assert bob_bodies[-1] == f"removed {group_id}".encode()
    got_by_bob = [r for r in appended if bob.id in r.seqs]
    assert len(got_by_bob) == len(bob_bodies) - 1
    # Everything bob missed was stored after the removal.
    if got_by_bob and len(got_by_bob) < len(appended):
        last_for_bob = max(r.message.id for r in got_by_bob)
        missed = [r for r in appended if bob.id not in r.seqs]
        assert min(r.message.id for r in missed) > last_for_bob


# Group history.


async def test_read_group_history_pages_backwards(store: Store) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    other = await make_group(store, bob, alice)
    results = [await post(store, alice, group_id, c) for c in range(1, 6)]
    await post(store, bob, other, 1)
    ids = [r.message.id for r in results]

    page, has_more = await store.read_group_history(group_id, None, 3)
    assert [m.id for m in page] == ids[:1:-1]
    assert has_more is True

    page, has_more = await store.read_group_history(group_id, page[-1].id, 3)
    assert [m.id for m in page] == ids[1::-1]
    assert has_more is False

    page, has_more = await store.read_group_history(group_id, MessageId(ids[0]), 3)
    assert page == []
    assert has_more is False


async def test_groups_survive_reopen(store: Store, store_factory: StoreFactory) -> None:
    alice, bob = await make_users(store, "alice", "bob")
    group_id = await make_group(store, alice, bob)
    sent = await post(store, alice, group_id, 1, mentions=(bob.id,))
    await store.close()

    reopened = store_factory()
    await reopened.open()
    try:
        assert len(await reopened.list_members(group_id)) == 2
        entries = await read_whole_inbox(reopened, bob)
        assert [entry.message for entry in entries] == [sent.message]
        assert (await post(reopened, alice, group_id, 1)).duplicate is True
    finally:
        await reopened.close()
