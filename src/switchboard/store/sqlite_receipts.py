"""SQL for read positions: moving them, and counting readers in groups."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from switchboard.ids import GroupId, MessageId, UserId
from switchboard.store.base import (
    ConversationKey,
    NotMember,
    ReadCount,
    ReadResult,
)
from switchboard.store.sqlite_changes import (
    CHANGE_READ,
    append_change_entry,
    insert_change,
)
from switchboard.store.sqlite_rows import read_transaction
from switchboard.store.sqlite_timeline import select_timeline_positions

__all__ = ["conversation_filter", "count_unread", "mark_read", "select_read_counts"]

# Messages that can be unread: sent by a user, so with a client id. Group
# notices and change entries have none.
_COUNTED = "m.client_id IS NOT NULL AND m.sender != ?"


def mark_read(
    conn: sqlite3.Connection,
    user_id: UserId,
    key: ConversationKey,
    up_to: MessageId | None,
    now: int,
) -> ReadResult:
    row = conn.execute(
        "SELECT end_id, read_id, unread FROM conversations"
        " WHERE user_id = ? AND peer = ? AND group_id = ?",
        (user_id, key.peer, key.group),
    ).fetchone()
    if row is None:
        if key.group:
            raise NotMember(key.group, user_id)
        return ReadResult(MessageId(0), 0, None)
    end_id, read_id, unread = row
    target = end_id if up_to is None else min(up_to, end_id)
    if target <= read_id:
        return ReadResult(MessageId(read_id), unread, None)

    unread = count_unread(conn, user_id, key, MessageId(target), MessageId(end_id))
    notify = _owners_of_read_messages(conn, user_id, key, read_id, target)
    conn.execute(
        "UPDATE conversations SET read_id = ?, unread = ?"
        " WHERE user_id = ? AND peer = ? AND group_id = ?",
        (target, unread, user_id, key.peer, key.group),
    )
    change = insert_change(conn, user_id, key, CHANGE_READ, MessageId(target), now)
    entry = append_change_entry(conn, user_id, change, unread)
    return ReadResult(MessageId(target), unread, entry, notify)


def count_unread(
    conn: sqlite3.Connection,
    user_id: UserId,
    key: ConversationKey,
    after_id: MessageId,
    end_id: MessageId,
) -> int:
    """Count the messages of others in the conversation after ``after_id``.

    Only ids up to ``end_id``, the conversation's newest message in the
    user's inbox, count: later group messages are not in the inbox of a
    member who left. Recalled messages and those the user deleted do not
    count.
    """
    where, params = conversation_filter(user_id, key)
    row = conn.execute(
        f"SELECT count(*) FROM messages AS m WHERE {where}"
        f" AND m.id > ? AND m.id <= ? AND {_COUNTED} AND m.recalled_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM deleted_messages AS d"
        " WHERE d.user_id = ? AND d.message_id = m.id)",
        (*params, after_id, end_id, user_id, user_id),
    ).fetchone()
    count: int = row[0]
    return count


def _owners_of_read_messages(
    conn: sqlite3.Connection,
    user_id: UserId,
    key: ConversationKey,
    after_id: int,
    up_to: int,
) -> tuple[UserId, ...]:
    if not key.group:
        return () if key.peer == user_id else (key.peer,)
    rows = conn.execute(
        "SELECT DISTINCT m.sender FROM messages AS m WHERE m.group_id = ?"
        f" AND m.id > ? AND m.id <= ? AND {_COUNTED}",
        (key.group, after_id, up_to, user_id),
    ).fetchall()
    return tuple(UserId(row[0]) for row in rows)


def conversation_filter(
    user_id: UserId, key: ConversationKey
) -> tuple[str, tuple[int, ...]]:
    """Return the WHERE terms that select the conversation's rows of messages."""
    if key.group:
        return "m.group_id = ?", (key.group,)
    low, high = min(user_id, key.peer), max(user_id, key.peer)
    return "m.conv_lo = ? AND m.conv_hi = ?", (low, high)


def select_read_counts(
    conn: sqlite3.Connection, group_id: GroupId, message_ids: Sequence[MessageId]
) -> list[ReadCount]:
    unique = list(dict.fromkeys(message_ids))
    if not unique:
        return []
    marks = ", ".join("?" * len(unique))
    with read_transaction(conn):
        members = conn.execute(
            "SELECT gm.user_id, coalesce(c.read_id, 0), coalesce(c.joined_id, 0)"
            " FROM group_members AS gm LEFT JOIN conversations AS c"
            " ON c.user_id = gm.user_id AND c.peer = 0 AND c.group_id = gm.group_id"
            " WHERE gm.group_id = ?",
            (group_id,),
        ).fetchall()
        timeline = select_timeline_positions(conn, group_id)
        if timeline is not None:
            # A large group: the read position in the timeline, or the one of
            # the messages before the switch when it is further.
            members = [
                (user, max(read_id, timeline[user][0]), timeline[user][1])
                for user, read_id, _ in members
                if user in timeline
            ]
        senders = dict(
            conn.execute(
                "SELECT m.id, m.sender FROM messages AS m WHERE m.group_id = ?"
                f" AND m.client_id IS NOT NULL AND m.id IN ({marks})",
                (group_id, *unique),
            ).fetchall()
        )

    counts = []
    for message_id in unique:
        sender = senders.get(message_id)
        if sender is None:
            continue
        # A member who joined after the message never had it.
        positions = [
            read_id
            for member, read_id, joined_id in members
            if member != sender and joined_id < message_id
        ]
        read = sum(1 for read_id in positions if read_id >= message_id)
        counts.append(ReadCount(message_id, read, len(positions)))
    return counts
