"""Group timelines (large groups, fan-out on read) in every Store implementation."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.ids import ClientMessageId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    GROUP_MODE_READ,
    GROUP_MODE_WRITE,
    GroupAppendResult,
    MessageNotFound,
    NotMember,
    Role,
    Store,
    TimelineEntry,
    TimelineState,
    User,
)
from tests.store.test_store_groups import (
    LIMIT,
    PHONE,
    TEXT,
    make_users,
    notice,
    post,
    read_whole_inbox,
)

THRESHOLD = 3
"""Groups of more than this many members get a timeline in these tests."""


async def make_large_group(store: Store, owner: User, *members: User) -> GroupId:
    change = await store.create_group(
        "crowd",
        owner.id,
        [m.id for m in members],
        2_000,
        max_members=LIMIT,
        notice=notice(owner, "group_created"),
        timeline_above=THRESHOLD,
    )
    assert change.group.mode == GROUP_MODE_READ
    return change.group.id


async def read_all(
    store: Store, group_id: GroupId, user: User, after: int = 0
) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    after_seq = Seq(after)
    while True:
        page = await store.read_timeline(group_id, user.id, after_seq, 2)
        entries += page.entries
        if not page.has_more:
            return entries
        after_seq = page.entries[-1].seq


async def state_of(store: Store, user: User, group_id: GroupId) -> TimelineState:
    states = {s.group.id: s for s in await store.timelines_of(user.id)}
    return states[group_id]


async def test_large_group_has_timeline(store: Store) -> None:
    a, b, c, d = await make_users(store, "a", "b", "c", "d")
    group_id = await make_large_group(store, a, b, c, d)

    first = await post(store, b, group_id, 1)
    second = await post(store, c, group_id, 1)

    assert first.timeline_seq == 2  # after the creation notice
    assert second.timeline_seq == 3
    assert first.seqs == {}
    assert set(first.members) == {a.id, b.id, c.id, d.id}
    entries = await read_all(store, group_id, d)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[1].message.id == first.message.id
    assert entries[2].message.body == b"message 1"
    assert await read_whole_inbox(store, d) == []


async def test_timeline_repeat_is_duplicate(store: Store) -> None:
    a, b, c, d = await make_users(store, "a", "b", "c", "d")
    group_id = await make_large_group(store, a, b, c, d)
    first = await post(store, b, group_id, 7)

    again = await post(store, b, group_id, 7)

    assert again.duplicate
    assert again.timeline_seq == first.timeline_seq
    assert again.message.id == first.message.id
    assert len(await read_all(store, group_id, a)) == 2


async def test_small_group_switches_when_crossing(store: Store) -> None:
    a, b, c, d, e = await make_users(store, "a", "b", "c", "d", "e")
    change = await store.create_group(
        "grows", a.id, [b.id], 2_000, max_members=LIMIT, timeline_above=THRESHOLD
    )
    group_id = change.group.id
    assert change.group.mode == GROUP_MODE_WRITE
    await post(store, b, group_id, 1)
    assert len(await read_whole_inbox(store, a)) == 1
    assert (await store.list_conversations(a.id, None, 10)).total_unread == 1

    added = await store.add_members(
        group_id,
        [c.id, d.id],
        Role.MEMBER,
        3_000,
        max_members=LIMIT,
        notice=notice(a, "member_added"),
        timeline_above=THRESHOLD,
    )
    assert added.notice is not None
    assert added.notice.timeline_seq == 1
    assert added.group.mode == GROUP_MODE_READ
    assert (await store.get_group(group_id)) == added.group
    # The timeline's count replaces the one of the messages before the switch.
    assert (await store.list_conversations(a.id, None, 10)).total_unread == 0

    await post(store, c, group_id, 1)
    for user in (a, b, c, d):
        assert [x.seq for x in await read_all(store, group_id, user)] == [1, 2]
    assert len(await read_whole_inbox(store, a)) == 1
    with pytest.raises(NotMember):
        await store.read_timeline(group_id, e.id, Seq(0), 10)


async def test_new_member_reads_from_join(store: Store) -> None:
    a, b, c, d, e = await make_users(store, "a", "b", "c", "d", "e")
    group_id = await make_large_group(store, a, b, c, d)
    await post(store, b, group_id, 1)

    added = await store.add_members(
        group_id,
        [e.id],
        Role.MEMBER,
        3_000,
        max_members=LIMIT,
        notice=notice(a, "member_added"),
    )
    assert added.notice is not None
    await post(store, b, group_id, 2)

    entries = await read_all(store, group_id, e)
    assert [x.seq for x in entries] == [3, 4]
    state = await state_of(store, e, group_id)
    assert state.start_seq == 3
    assert state.head_seq == 4
    assert state.unread == 1


@pytest.mark.parametrize(("history", "first"), [(1, 2), (None, 1)])
async def test_new_member_reads_history(
    store: Store, history: int | None, first: int
) -> None:
    a, b, c, d, e = await make_users(store, "a", "b", "c", "d", "e")
    group_id = await make_large_group(store, a, b, c, d)
    await post(store, b, group_id, 1)

    await store.add_members(
        group_id,
        [e.id],
        Role.MEMBER,
        3_000,
        max_members=LIMIT,
        notice=notice(a, "member_added"),
        history=history,
    )

    entries = await read_all(store, group_id, e)
    assert [x.seq for x in entries] == list(range(first, 4))


async def test_removed_member_reads_up_to_removal(store: Store) -> None:
    a, b, c, d = await make_users(store, "a", "b", "c", "d")
    group_id = await make_large_group(store, a, b, c, d)
    await post(store, b, group_id, 1)

    removed = await store.remove_member(
        group_id, d.id, notice=notice(a, "member_removed")
    )
    assert removed.notice is not None
    assert d.id in removed.notice.members
    later = await post(store, b, group_id, 2)

    assert d.id not in later.members
    entries = await read_all(store, group_id, d)
    assert [x.seq for x in entries] == [1, 2, 3]
    page = await store.read_timeline(group_id, d.id, Seq(3), 10)
    assert page.entries == []
    assert page.head_seq == 3
    state = await state_of(store, d, group_id)
    assert state.left
    assert state.head_seq == 3
    assert [x.seq for x in await read_all(store, group_id, c)] == [1, 2, 3, 4]


async def test_timeline_unread_and_read(store: Store) -> None:
    a, b, c, d = await make_users(store, "a", "b", "c", "d")
    group_id = await make_large_group(store, a, b, c, d)
    first = await post(store, b, group_id, 1)
    await post(store, c, group_id, 1)
    await post(store, d, group_id, 1)

    state = await state_of(store, d, group_id)
    assert state.unread == 2  # the notice and d's own message do not count
    assert state.last is not None
    assert state.last.seq == 4

    result = await store.mark_timeline_read(d.id, group_id, first.message.id, 9_000)
    assert result.read_id == first.message.id
    assert result.unread == 1
    assert result.notify == (b.id,)
    assert result.entry is not None
    assert result.entry.message.change == 1
    assert result.entry.message.target == first.message.id
    assert result.entry.message.group_id == group_id
    assert result.entry.unread == 1
    assert await read_whole_inbox(store, d) == [result.entry]
    assert (await state_of(store, d, group_id)).unread == 1

    result = await store.mark_timeline_read(d.id, group_id, None, 9_000)
    assert result.unread == 0
    assert set(result.notify) == {c.id}
    again = await store.mark_timeline_read(d.id, group_id, MessageId(1), 9_000)
    assert again.notify == ()
    assert again.entry is None
    assert again.read_id == result.read_id
    assert len(await read_whole_inbox(store, d)) == 2
    assert (await state_of(store, d, group_id)).unread == 0
    assert (await state_of(store, a, group_id)).unread == 3


async def test_timeline_of_non_member_raises(store: Store) -> None:
    a, b, c, d, e = await make_users(store, "a", "b", "c", "d", "e")
    group_id = await make_large_group(store, a, b, c, d)

    with pytest.raises(NotMember):
        await store.read_timeline(group_id, e.id, Seq(0), 10)
    with pytest.raises(NotMember):
        await store.mark_timeline_read(e.id, group_id, None, 9_000)
    assert await store.timelines_of(e.id) == []
    with pytest.raises(NotMember):
        await post(store, e, group_id, 1)


async def test_concurrent_timeline_appends_gapless(store: Store) -> None:
    users = await make_users(store, "a", "b", "c", "d")
    group_id = await make_large_group(store, *users)

    async def send(user: User, client_id: int) -> GroupAppendResult:
        return await store.append_group_message(
            user.id,
            PHONE,
            ClientMessageId(client_id),
            group_id,
            TEXT,
            b"x",
            5_000,
        )

    results = await asyncio.gather(
        *(send(user, n) for user in users for n in range(1, 6))
    )

    seqs = sorted(r.timeline_seq for r in results)
    assert seqs == list(range(2, 22))
    entries = await read_all(store, group_id, users[0])
    assert [e.seq for e in entries] == list(range(1, 22))
    ids = [e.message.id for e in entries]
    assert ids == sorted(ids)


async def test_timelines_of_lists_groups(store: Store) -> None:
    a, b, c, d = await make_users(store, "a", "b", "c", "d")
    group_id = await make_large_group(store, a, b, c, d)
    small = await store.create_group("small", a.id, [b.id], 2_000, max_members=LIMIT)

    states = await store.timelines_of(a.id)

    assert [s.group.id for s in states] == [group_id]
    assert small.group.id != group_id
    assert states[0].group.name == "crowd"
    assert states[0].start_seq == 1
    assert not states[0].left
    assert UserId(a.id) == states[0].group.created_by


async def test_timeline_read_counts(store: Store) -> None:
    a, b, c, d, e = await make_users(store, "a", "b", "c", "d", "e")
    group_id = await make_large_group(store, a, b, c, d)
    first = await post(store, b, group_id, 1)
    second = await post(store, b, group_id, 2)
    await store.mark_timeline_read(c.id, group_id, first.message.id, 9_000)
    await store.mark_timeline_read(d.id, group_id, None, 9_000)
    await store.add_members(
        group_id,
        [e.id],
        Role.MEMBER,
        3_000,
        max_members=LIMIT,
        notice=notice(a, "member_added"),
    )
    third = await post(store, b, group_id, 3)
    await store.mark_timeline_read(e.id, group_id, None, 9_000)

    ids = [first.message.id, second.message.id, third.message.id]
    counts = await store.group_read_counts(group_id, ids)

    assert [(x.message_id, x.read, x.members) for x in counts] == [
        (first.message.id, 2, 3),  # c and d of a, c, d; e joined later
        (second.message.id, 1, 3),
        (third.message.id, 1, 4),
    ]


async def test_timeline_recall_and_edit(store: Store) -> None:
    a, b, c, d, e = await make_users(store, "a", "b", "c", "d", "e")
    group_id = await make_large_group(store, a, b, c, d)
    kept = await post(store, b, group_id, 1)
    gone = await post(store, b, group_id, 2)

    held = await store.get_message(gone.message.id, c.id)
    assert held is not None
    assert held.message.body == b"message 2"
    assert not held.notice
    assert await store.get_message(gone.message.id, e.id) is None

    edited = await store.edit_message(b.id, kept.message.id, b"fixed", 7_000)
    recalled = await store.recall_message(b.id, gone.message.id, 8_000)
    again = await store.recall_message(b.id, gone.message.id, 9_000)

    assert edited.entries == {}
    assert edited.timeline is not None
    assert edited.timeline.timeline_seq == 4
    assert edited.timeline.message.change == 3
    assert edited.timeline.message.target == kept.message.id
    assert edited.timeline.message.body == b"fixed"
    assert set(edited.timeline.members) == {a.id, b.id, c.id, d.id}
    assert recalled.timeline is not None
    assert recalled.timeline.timeline_seq == 5
    assert recalled.timeline.message.change == 2
    assert recalled.target.recalled_at == 8_000
    assert again.timeline is None
    entries = await read_all(store, group_id, c)
    assert [x.seq for x in entries] == [1, 2, 3, 4, 5]
    assert entries[1].message.body == b"fixed"
    assert entries[1].message.edited_at == 7_000
    assert entries[2].message.body == b""
    assert entries[2].message.recalled_at == 8_000
    assert entries[3].message.change == 3
    state = await state_of(store, c, group_id)
    assert state.last is not None
    # Change entries are not shown as the last message; the recalled one is.
    assert state.last.message.id == gone.message.id
    assert state.last.message.recalled_at == 8_000
    assert state.unread == 1  # the recalled message no longer counts
    history, _ = await store.read_group_history(group_id, None, 10)
    assert [m.id for m in history] == [
        gone.message.id,
        kept.message.id,
        history[-1].id,
    ]
    counts = await store.group_read_counts(group_id, [recalled.timeline.message.id])
    assert counts == []


async def test_timeline_delete_for_self(store: Store) -> None:
    a, b, c, d, e = await make_users(store, "a", "b", "c", "d", "e")
    group_id = await make_large_group(store, a, b, c, d)
    kept = await post(store, b, group_id, 1)
    sent = await post(store, b, group_id, 2)
    assert (await state_of(store, c, group_id)).unread == 2

    result = await store.delete_message_for(c.id, sent.message.id, 7_000)
    again = await store.delete_message_for(c.id, sent.message.id, 8_000)

    entry = result.entries[c.id]
    assert entry.message.change == 4
    assert entry.message.target == sent.message.id
    assert entry.unread == 1
    assert result.timeline is None
    assert again.entries == {}
    assert await read_whole_inbox(store, c) == [entry]
    held = await store.get_message(sent.message.id, c.id)
    assert held is not None
    assert held.deleted
    page = await read_all(store, group_id, c)
    assert [(x.seq, x.deleted) for x in page] == [(1, False), (2, False), (3, True)]
    state = await state_of(store, c, group_id)
    assert state.unread == 1
    assert state.last is not None
    assert state.last.message.id == kept.message.id
    history, _ = await store.read_group_history(group_id, None, 10, viewer=c.id)
    assert sent.message.id not in [m.id for m in history]
    # Other members keep the message.
    assert [x.deleted for x in await read_all(store, group_id, d)] == [False] * 3
    assert (await state_of(store, d, group_id)).unread == 2
    with pytest.raises(MessageNotFound):
        await store.delete_message_for(e.id, sent.message.id, 7_000)


async def test_connect_state_matches_separate_reads(store: Store) -> None:
    a, b, c, d = await make_users(store, "a", "b", "c", "d")
    group_id = await make_large_group(store, a, b, c, d)
    await post(store, b, group_id, 1)
    for client_id in range(1, 6):
        await store.append_message(
            a.id, PHONE, ClientMessageId(client_id), b.id, TEXT, b"hi", 3_000
        )
    await store.set_cursor(b.id, PHONE, Seq(2))

    state = await store.read_connect_state(b.id, PHONE, Seq(1), 3)

    assert state.page == await store.read_inbox(b.id, Seq(1), 3)
    assert [entry.seq for entry in state.page.entries] == [2, 3, 4]
    assert state.page.has_more
    assert state.device == await store.get_device(b.id, PHONE)
    assert state.device.cursor == 2
    assert state.timelines == await store.timelines_of(b.id)
    assert [t.group.id for t in state.timelines] == [group_id]


async def test_connect_state_of_unknown_user(store: Store) -> None:
    state = await store.read_connect_state(UserId(2**63), PHONE, Seq(0), 10)

    assert state.page.entries == []
    assert state.device.cursor == 0
    assert state.timelines == []
