"""SQL for conversation lists: one row per user and conversation.

A row keeps the user's read position and unread count of the conversation,
and which message the list shows as its latest. Every write that adds an
inbox entry updates the row of the entry's conversation in the same
transaction, so the count is exact whatever device reads it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from switchboard.ids import GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    Conversation,
    ConversationKey,
    ConversationPage,
    InboxEntry,
)
from switchboard.store.sqlite_rows import (
    MESSAGE_COLUMNS,
    message_from_row,
    read_transaction,
)

__all__ = [
    "join_group",
    "select_conversation_page",
    "touch_conversation",
]

_INT64_MAX: Final = 2**63 - 1


def touch_conversation(
    conn: sqlite3.Connection,
    user_id: UserId,
    key: ConversationKey,
    message_id: MessageId,
    seq: Seq,
    *,
    counts: bool,
) -> int:
    """Make a new message the conversation's latest; return the unread count.

    ``counts`` adds the message to the unread count: it is from another user
    and not a group notice.
    """
    row = conn.execute(
        "INSERT INTO conversations (user_id, peer, group_id, joined_id, end_id,"
        " last_id, last_seq, read_id, unread) VALUES (?, ?, ?, 0, ?, ?, ?, 0, ?)"
        " ON CONFLICT (user_id, peer, group_id) DO UPDATE SET"
        " end_id = excluded.end_id, last_id = excluded.last_id,"
        " last_seq = excluded.last_seq, unread = unread + excluded.unread"
        " RETURNING unread",
        (user_id, key.peer, key.group, message_id, message_id, seq, int(counts)),
    ).fetchone()
    unread: int = row[0]
    return unread


def join_group(
    conn: sqlite3.Connection, group_id: GroupId, user_ids: Sequence[UserId]
) -> None:
    """Start the users' read positions at the group's latest message.

    Call it when users join, before the join's notice is appended. Messages
    sent before they joined, or while they were away, are not in their
    inboxes and do not count as unread.
    """
    row = conn.execute(
        "SELECT max(id) FROM messages WHERE group_id = ?", (group_id,)
    ).fetchone()
    joined = 0 if row[0] is None else row[0]
    conn.executemany(
        "INSERT INTO conversations (user_id, peer, group_id, joined_id, end_id,"
        " last_id, last_seq, read_id, unread) VALUES (?, 0, ?, ?, 0, 0, 0, ?, 0)"
        " ON CONFLICT (user_id, peer, group_id) DO UPDATE SET"
        " joined_id = excluded.joined_id,"
        " read_id = max(read_id, excluded.read_id), unread = 0",
        [(user_id, group_id, joined, joined) for user_id in user_ids],
    )


def select_conversation_page(
    conn: sqlite3.Connection, user_id: UserId, before_id: MessageId | None, limit: int
) -> ConversationPage:
    below = _INT64_MAX if before_id is None else before_id
    # Fetching one row more than the limit shows whether more conversations
    # follow. The peer's row gives the peer's read position.
    with read_transaction(conn):
        rows = conn.execute(
            "SELECT c.peer, c.group_id, c.last_seq, c.unread, c.read_id,"
            " coalesce(u.name, g.name, ''), coalesce(p.read_id, 0),"
            f" {MESSAGE_COLUMNS}"
            " FROM conversations AS c"
            " JOIN messages AS m ON m.id = c.last_id"
            " LEFT JOIN users AS u ON c.group_id = 0 AND u.id = c.peer"
            " LEFT JOIN groups AS g ON g.id = c.group_id"
            " LEFT JOIN conversations AS p ON c.group_id = 0"
            " AND p.user_id = c.peer AND p.peer = c.user_id AND p.group_id = 0"
            " WHERE c.user_id = ? AND c.last_id > 0 AND c.last_id < ?"
            " ORDER BY c.last_id DESC LIMIT ?",
            (user_id, below, limit + 1),
        ).fetchall()
        head = conn.execute(
            "SELECT head_seq FROM inbox_heads WHERE user_id = ?", (user_id,)
        ).fetchone()
        total = conn.execute(
            "SELECT coalesce(sum(unread), 0) FROM conversations WHERE user_id = ?",
            (user_id,),
        ).fetchone()

    return ConversationPage(
        conversations=[_conversation_from_row(row) for row in rows[:limit]],
        has_more=len(rows) > limit,
        head_seq=Seq(0 if head is None else head[0]),
        total_unread=total[0],
    )


def _conversation_from_row(row: tuple[Any, ...]) -> Conversation:
    return Conversation(
        key=ConversationKey(peer=UserId(row[0]), group=GroupId(row[1])),
        name=row[5],
        last=InboxEntry(Seq(row[2]), message_from_row(row, start=7), row[3]),
        unread=row[3],
        read_id=MessageId(row[4]),
        peer_read_id=MessageId(row[6]),
    )
