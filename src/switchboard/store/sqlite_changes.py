"""SQL for change entries: inbox entries that record a change, not a message.

A change is a row of ``messages`` with ``change`` set to its kind and
``target`` to the message it refers to. It belongs to the conversation it
changes, has no client id, and gets an inbox entry in each inbox it concerns.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from switchboard.ids import MessageId, Seq, UserId
from switchboard.store.base import ConversationKey, InboxEntry, StoredMessage
from switchboard.store.sqlite_rows import next_seq

__all__ = [
    "CHANGE_DELETE",
    "CHANGE_EDIT",
    "CHANGE_READ",
    "CHANGE_RECALL",
    "append_change_entry",
    "insert_change",
]

CHANGE_READ: Final = 1
"""``messages.change`` of a read: the sender read up to ``target``."""
CHANGE_RECALL: Final = 2
"""``messages.change`` of a recall of ``target`` by its sender."""
CHANGE_EDIT: Final = 3
"""``messages.change`` of an edit: ``body`` replaced the body of ``target``."""
CHANGE_DELETE: Final = 4
"""``messages.change`` of a deletion of ``target`` for the sender only."""


def insert_change(
    conn: sqlite3.Connection,
    actor: UserId,
    key: ConversationKey,
    change: int,
    target: MessageId,
    sent_at: int,
    *,
    content_type: int = 0,
    body: bytes = b"",
) -> StoredMessage:
    """Insert the row of a change made by ``actor`` in a conversation.

    ``key`` names the conversation from the point of view of ``actor``. The
    row gets no inbox entry here: call append_change_entry for each inbox it
    concerns.
    """
    if key.group:
        recipient, conv_lo, conv_hi = None, None, None
    else:
        recipient = key.peer
        conv_lo, conv_hi = min(actor, key.peer), max(actor, key.peer)
    # sender_seq is filled in by the first append_change_entry of the actor;
    # 0 until then, because the column is NOT NULL.
    row = conn.execute(
        "INSERT INTO messages (sender, recipient, group_id, conv_lo, conv_hi,"
        " content_type, body, sent_at, sender_seq, change, target)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id",
        (
            actor,
            recipient,
            key.group or None,
            conv_lo,
            conv_hi,
            content_type,
            body,
            sent_at,
            change,
            target,
        ),
    ).fetchone()
    return StoredMessage(
        id=MessageId(row[0]),
        sender=actor,
        recipient=UserId(recipient or 0),
        content_type=content_type,
        body=body,
        sent_at=sent_at,
        group_id=key.group or None,
        change=change,
        target=target,
    )


def append_change_entry(
    conn: sqlite3.Connection, user_id: UserId, change: StoredMessage, unread: int
) -> InboxEntry:
    """Append a change to the user's inbox; return the new entry.

    ``unread`` is the user's unread count of the conversation after the
    change.
    """
    seq = next_seq(conn, user_id)
    conn.execute(
        "INSERT INTO inbox (user_id, seq, message_id, unread) VALUES (?, ?, ?, ?)",
        (user_id, seq, change.id, unread),
    )
    if user_id == change.sender:
        conn.execute(
            "UPDATE messages SET sender_seq = ? WHERE id = ?", (seq, change.id)
        )
    return InboxEntry(Seq(seq), change, unread)
