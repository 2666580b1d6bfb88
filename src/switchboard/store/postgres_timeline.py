"""SQL for group timelines in the PostgreSQL store, run in the group's database.

A group in ``"read"`` mode stores each message once, in ``group_messages``
with ``seq`` set, and gives members no inbox copies. ``groups.head_seq`` is
the timeline's highest sequence, and ``timeline_members`` keeps, per user,
the range the user may read and the read position. Every write here runs
under the group's advisory lock (postgres_groups.lock_group), so sequences
are gapless and message ids grow with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

import asyncpg

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    GROUP_MODE_READ,
    Group,
    NotMember,
    ReadResult,
    StoredMessage,
    TimelineEntry,
    TimelinePage,
    TimelineState,
)
from switchboard.store.postgres_changes import CHANGE_EDIT, CHANGE_RECALL
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_rows import OutgoingMessage

__all__ = [
    "change_body",
    "close_timeline_access",
    "delete_for",
    "find_timeline_copy",
    "find_timeline_message",
    "insert_timeline_message",
    "mark_timeline_read",
    "may_read",
    "open_timeline_access",
    "select_deleted_ids",
    "select_timeline_page",
    "select_timeline_positions",
    "select_timelines_of",
    "switch_to_timeline",
]

_MESSAGE_COLUMNS: Final = (
    "seq, message_id, sender, content_type, body, sent_at, mentions,"
    " edited_at, recalled_at, change, target, notice"
)


def _deleted(parameter: int) -> str:
    """Return the SQL condition that the user in query parameter
    ``parameter`` deleted the group_messages row for themselves."""
    return (
        "EXISTS (SELECT 1 FROM timeline_deletions AS d WHERE d.group_id ="
        f" group_messages.group_id AND d.user_id = ${parameter}"
        " AND d.message_id = group_messages.message_id)"
    )


# Messages that can be unread: sent by another user and not recalled.
_COUNTED: Final = (
    "NOT notice AND change IS NULL AND sender <> $4 AND recalled_at IS NULL"
)


async def switch_to_timeline(conn: Connection, group_id: GroupId) -> None:
    """Put a ``"write"`` group in ``"read"`` mode with an empty timeline."""
    await conn.execute(
        "UPDATE groups SET mode = 'read', head_seq = 0 WHERE id = $1", group_id
    )


async def open_timeline_access(
    conn: Connection,
    group_id: GroupId,
    users: Sequence[UserId],
    history: int | None,
) -> None:
    """Let ``users`` read the timeline from the next entry on, plus
    ``history`` earlier entries (None: all of them).

    Users who have access already keep it unchanged; former members get it
    again from the new start.
    """
    head = await _head(conn, group_id)
    start = 1 if history is None else max(1, head + 1 - history)
    await conn.executemany(
        "INSERT INTO timeline_members (group_id, user_id, start_seq, left_seq,"
        " read_seq) VALUES ($1, $2, $3, NULL, $4)"
        " ON CONFLICT (group_id, user_id) DO UPDATE SET"
        " start_seq = excluded.start_seq, left_seq = NULL,"
        " read_seq = greatest(timeline_members.read_seq, excluded.read_seq)"
        " WHERE timeline_members.left_seq IS NOT NULL",
        [(group_id, user, start, head) for user in users],
    )


async def close_timeline_access(conn: Connection, group_id: GroupId) -> None:
    """End the access of users who are no longer members at the current head,
    which is the notice of their removal when one was appended."""
    await conn.execute(
        "UPDATE timeline_members AS tm SET left_seq = g.head_seq FROM groups AS g"
        " WHERE g.id = tm.group_id AND tm.group_id = $1 AND tm.left_seq IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM group_members AS gm"
        " WHERE gm.group_id = tm.group_id AND gm.user_id = tm.user_id)",
        group_id,
    )


async def find_timeline_copy(
    conn: Connection,
    group_id: GroupId,
    sender: UserId,
    device: DeviceId,
    client_id: ClientMessageId,
) -> TimelineEntry | None:
    """Return the timeline message stored for a Send before, if any."""
    row = await conn.fetchrow(
        f"SELECT {_MESSAGE_COLUMNS} FROM group_messages WHERE group_id = $1"
        " AND sender = $2 AND sender_device = $3 AND client_id = $4",
        group_id,
        sender,
        device,
        client_id,
    )
    return None if row is None else _entry(group_id, row)


async def insert_timeline_message(
    conn: Connection, group_id: GroupId, message: OutgoingMessage
) -> Seq:
    """Append the message at the timeline's next sequence and return it."""
    seq = Seq(
        await conn.fetchval(
            "UPDATE groups SET head_seq = head_seq + 1 WHERE id = $1"
            " RETURNING head_seq",
            group_id,
        )
    )
    device, client_id = message.origin if message.origin else (None, None)
    await conn.execute(
        "INSERT INTO group_messages (group_id, message_id, sender, content_type,"
        " body, sent_at, mentions, notice, seq, sender_device, client_id,"
        " change, target)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        group_id,
        message.id,
        message.sender,
        message.content_type,
        message.body,
        message.sent_at,
        list(message.mentions) if message.mentions else None,
        message.notice,
        seq,
        device,
        client_id,
        message.change or None,
        message.target or None,
    )
    return seq


async def find_timeline_message(
    conn: Connection, message_id: MessageId
) -> tuple[GroupId, TimelineEntry, bool] | None:
    """Return the group, the entry and whether it is a notice, for a message
    (not a change entry) of a timeline in this database."""
    row = await conn.fetchrow(
        f"SELECT group_id, {_MESSAGE_COLUMNS} FROM group_messages"
        " WHERE message_id = $1 AND seq IS NOT NULL AND change IS NULL",
        message_id,
    )
    if row is None:
        return None
    group_id = GroupId(row["group_id"])
    return group_id, _entry(group_id, row), bool(row["notice"])


async def may_read(
    conn: Connection, group_id: GroupId, user_id: UserId, seq: int
) -> bool:
    """Return whether the user may read timeline entry ``seq`` of the group."""
    try:
        start, head, _ = await _access(conn, group_id, user_id)
    except NotMember:
        return False
    return bool(start <= seq <= head)


async def change_body(
    conn: Connection,
    group_id: GroupId,
    message_id: MessageId,
    change: int,
    body: bytes,
    now: int,
) -> None:
    """Apply a recall or an edit to a timeline message's row.

    A recall empties the bodies of its earlier edits too, which would show
    the recalled text.
    """
    if change == CHANGE_RECALL:
        await conn.execute(
            "UPDATE group_messages SET body = ''::bytea, recalled_at = $3"
            " WHERE group_id = $1 AND message_id = $2",
            group_id,
            message_id,
            now,
        )
        await conn.execute(
            "UPDATE group_messages SET body = ''::bytea WHERE group_id = $1"
            " AND target = $2 AND change = $3",
            group_id,
            message_id,
            CHANGE_EDIT,
        )
        return
    await conn.execute(
        "UPDATE group_messages SET body = $3, edited_at = $4"
        " WHERE group_id = $1 AND message_id = $2",
        group_id,
        message_id,
        body,
        now,
    )


async def select_timeline_page(
    conn: Connection, group_id: GroupId, user_id: UserId, after: int, limit: int
) -> TimelinePage:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        start, head, _ = await _access(conn, group_id, user_id)
        rows = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS}, {_deleted(5)} AS deleted"
            " FROM group_messages WHERE group_id = $1"
            " AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            group_id,
            max(after, start - 1),
            head,
            limit + 1,
            user_id,
        )
    return TimelinePage(
        entries=[
            dataclasses.replace(_entry(group_id, row), deleted=row["deleted"])
            for row in rows[:limit]
        ],
        has_more=len(rows) > limit,
        head_seq=Seq(head),
        start_seq=Seq(start),
    )


async def select_timelines_of(conn: Connection, user_id: UserId) -> list[TimelineState]:
    """Return the user's timelines of groups in this database."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            "SELECT tm.group_id, tm.start_seq, tm.left_seq, tm.read_seq,"
            " g.head_seq, g.name, g.created_by, g.created_at"
            " FROM timeline_members AS tm JOIN groups AS g ON g.id = tm.group_id"
            " WHERE tm.user_id = $1 AND g.mode = 'read' ORDER BY tm.group_id",
            user_id,
        )
        return [await _state(conn, user_id, row) for row in rows]


async def _state(
    conn: Connection, user_id: UserId, row: asyncpg.Record
) -> TimelineState:
    group = Group(
        id=GroupId(row["group_id"]),
        name=row["name"],
        created_by=UserId(row["created_by"]),
        created_at=row["created_at"],
        mode=GROUP_MODE_READ,
    )
    start = row["start_seq"]
    left = row["left_seq"]
    head = row["head_seq"] if left is None else left
    last = await conn.fetchrow(
        f"SELECT {_MESSAGE_COLUMNS} FROM group_messages WHERE group_id = $1"
        " AND seq >= $2 AND seq <= $3 AND change IS NULL"
        f" AND NOT {_deleted(4)} ORDER BY seq DESC LIMIT 1",
        group.id,
        start,
        head,
        user_id,
    )
    after = max(row["read_seq"], start - 1)
    return TimelineState(
        group=group,
        start_seq=Seq(start),
        head_seq=Seq(head),
        left=left is not None,
        last=None if last is None else _entry(group.id, last),
        read_id=await _id_at(conn, group.id, row["read_seq"]),
        unread=await _count_unread(conn, group.id, user_id, after, head),
    )


async def select_timeline_positions(
    conn: Connection, group_id: GroupId
) -> dict[UserId, tuple[MessageId, MessageId]]:
    """Return each current member's read position and joined id as message ids.

    The joined id is that of the entry before the member's ``start_seq``, so
    the member may read the messages with higher ids.
    """
    rows = await conn.fetch(
        "SELECT tm.user_id,"
        " coalesce((SELECT m.message_id FROM group_messages AS m"
        " WHERE m.group_id = tm.group_id AND m.seq = tm.read_seq), 0) AS read_id,"
        " coalesce((SELECT m.message_id FROM group_messages AS m"
        " WHERE m.group_id = tm.group_id AND m.seq = tm.start_seq - 1), 0)"
        " AS joined_id"
        " FROM timeline_members AS tm JOIN group_members AS gm"
        " ON gm.group_id = tm.group_id AND gm.user_id = tm.user_id"
        " WHERE tm.group_id = $1",
        group_id,
    )
    return {
        UserId(row["user_id"]): (MessageId(row["read_id"]), MessageId(row["joined_id"]))
        for row in rows
    }


async def mark_timeline_read(
    conn: Connection, user_id: UserId, group_id: GroupId, up_to: MessageId | None
) -> tuple[ReadResult, bool]:
    """Move the read position; return the result without its inbox entry, and
    whether the position moved. Run it in a transaction on the group's
    database."""
    start, head, read_seq = await _access(conn, group_id, user_id, lock=True)
    low = max(read_seq, start - 1)
    target = await conn.fetchval(
        "SELECT max(seq) FROM group_messages WHERE group_id = $1"
        " AND seq > $2 AND seq <= $3 AND message_id <= $4",
        group_id,
        low,
        head,
        2**63 - 1 if up_to is None else up_to,
    )
    if target is None:
        unread = await _count_unread(conn, group_id, user_id, low, head)
        return ReadResult(await _id_at(conn, group_id, read_seq), unread, None), False

    senders = await conn.fetch(
        "SELECT DISTINCT sender FROM group_messages WHERE group_id = $1"
        f" AND seq > $2 AND seq <= $3 AND {_COUNTED}",
        group_id,
        low,
        target,
        user_id,
    )
    await conn.execute(
        "UPDATE timeline_members SET read_seq = $3 WHERE group_id = $1"
        " AND user_id = $2",
        group_id,
        user_id,
        target,
    )
    result = ReadResult(
        read_id=await _id_at(conn, group_id, target),
        unread=await _count_unread(conn, group_id, user_id, target, head),
        entry=None,
        notify=tuple(UserId(row["sender"]) for row in senders),
    )
    return result, True


async def _head(conn: Connection, group_id: GroupId) -> int:
    head: int = await conn.fetchval(
        "SELECT head_seq FROM groups WHERE id = $1", group_id
    )
    return head


async def _access(
    conn: Connection, group_id: GroupId, user_id: UserId, *, lock: bool = False
) -> tuple[int, int, int]:
    """Return the (start, head, read) sequences of the user; raise NotMember."""
    row = await conn.fetchrow(
        "SELECT tm.start_seq, coalesce(tm.left_seq, g.head_seq) AS head,"
        " tm.read_seq FROM timeline_members AS tm"
        " JOIN groups AS g ON g.id = tm.group_id"
        " WHERE tm.group_id = $1 AND tm.user_id = $2 AND g.mode = 'read'"
        + (" FOR UPDATE OF tm" if lock else ""),
        group_id,
        user_id,
    )
    if row is None:
        raise NotMember(group_id, user_id)
    return row["start_seq"], row["head"], row["read_seq"]


async def _count_unread(
    conn: Connection, group_id: GroupId, user_id: UserId, after: int, head: int
) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM group_messages WHERE group_id = $1"
        f" AND seq > $2 AND seq <= $3 AND {_COUNTED} AND NOT {_deleted(4)}",
        group_id,
        after,
        head,
        user_id,
    )
    return count


async def delete_for(
    conn: Connection, group_id: GroupId, user_id: UserId, message_id: MessageId
) -> int:
    """Record that the user deleted a timeline message for themselves; return
    the user's unread count of the group afterwards. Run it in a transaction."""
    await conn.execute(
        "INSERT INTO timeline_deletions (group_id, user_id, message_id)"
        " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        group_id,
        user_id,
        message_id,
    )
    start, head, read_seq = await _access(conn, group_id, user_id)
    return await _count_unread(conn, group_id, user_id, max(read_seq, start - 1), head)


async def select_deleted_ids(
    conn: Connection, group_id: GroupId, user_id: UserId, message_ids: list[MessageId]
) -> set[MessageId]:
    """Return those of ``message_ids`` that the user deleted in the group's
    timeline."""
    rows = await conn.fetch(
        "SELECT message_id FROM timeline_deletions WHERE group_id = $1"
        " AND user_id = $2 AND message_id = ANY($3::bigint[])",
        group_id,
        user_id,
        message_ids,
    )
    return {MessageId(row["message_id"]) for row in rows}


async def _id_at(conn: Connection, group_id: GroupId, seq: int) -> MessageId:
    found = await conn.fetchval(
        "SELECT message_id FROM group_messages WHERE group_id = $1 AND seq = $2",
        group_id,
        seq,
    )
    return MessageId(found or 0)


def _entry(group_id: GroupId, row: asyncpg.Record) -> TimelineEntry:
    message = StoredMessage(
        id=MessageId(row["message_id"]),
        sender=UserId(row["sender"]),
        recipient=UserId(0),
        content_type=row["content_type"],
        body=row["body"],
        sent_at=row["sent_at"],
        group_id=group_id,
        mentions=tuple(UserId(u) for u in row["mentions"] or ()),
        edited_at=row["edited_at"] or 0,
        recalled_at=row["recalled_at"] or 0,
        change=row["change"] or 0,
        target=MessageId(row["target"] or 0),
    )
    return TimelineEntry(Seq(row["seq"]), message)
