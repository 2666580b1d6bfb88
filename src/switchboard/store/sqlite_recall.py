"""SQL for changes to sent messages: recall, edit and delete-for-me.

A message is held by every user whose inbox has an entry for it: the sender
and the recipient of a one-to-one message, and the members of a group when
it was sent. A group member holds a message when the member's conversation row
shows that the member joined before it (``joined_id``) and had not left
(``end_id``). A large group's timeline message is held by the users who may
read its timeline sequence, and a recall or edit of it is appended to the
timeline instead of to inboxes.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from switchboard.ids import MessageId, UserId
from switchboard.store import sqlite_timeline
from switchboard.store.base import (
    ChangeResult,
    ConversationKey,
    HeldMessage,
    InboxEntry,
    MessageNotFound,
    MessageRecalled,
    StoredMessage,
)
from switchboard.store.sqlite_changes import (
    CHANGE_DELETE,
    CHANGE_EDIT,
    CHANGE_RECALL,
    append_change_entry,
    insert_change,
)
from switchboard.store.sqlite_receipts import conversation_filter
from switchboard.store.sqlite_rows import (
    MESSAGE_COLUMN_COUNT,
    MESSAGE_COLUMNS,
    message_from_row,
)

__all__ = [
    "delete_message_for",
    "edit_message",
    "recall_message",
    "select_held_message",
]


def select_held_message(
    conn: sqlite3.Connection, message_id: MessageId, viewer: UserId
) -> HeldMessage | None:
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, m.client_id IS NULL, d.message_id IS NOT NULL,"
        " m.timeline_seq"
        " FROM messages AS m LEFT JOIN deleted_messages AS d"
        " ON d.user_id = ? AND d.message_id = m.id WHERE m.id = ?",
        (viewer, message_id),
    ).fetchone()
    if row is None:
        return None
    message = message_from_row(row)
    if message.change:
        return None
    timeline_seq = row[MESSAGE_COLUMN_COUNT + 2]
    if timeline_seq is not None:
        assert message.group_id is not None
        if not sqlite_timeline.may_read(conn, message.group_id, viewer, timeline_seq):
            return None
    elif not _holds(conn, viewer, message):
        return None
    return HeldMessage(
        message,
        deleted=bool(row[MESSAGE_COLUMN_COUNT + 1]),
        notice=bool(row[MESSAGE_COLUMN_COUNT]) and message.group_id is not None,
    )


def recall_message(
    conn: sqlite3.Connection, actor: UserId, message_id: MessageId, now: int
) -> ChangeResult:
    message = _require_held(conn, message_id, actor).message
    if message.recalled_at:
        return ChangeResult(message, {})
    recalled = dataclasses.replace(message, body=b"", recalled_at=now)
    if _in_timeline(conn, message):
        _clear_body(conn, message, now)
        appended = sqlite_timeline.append_change(
            conn, actor, recalled, CHANGE_RECALL, b"", now
        )
        return ChangeResult(recalled, {}, appended)

    # Whether each holder counts it as unread, before it stops counting.
    holders = _holders(conn, message, actor)
    counted = {user: _counts_as_unread(conn, user, message) for user in holders}
    _clear_body(conn, message, now)

    change = insert_change(
        conn,
        actor,
        _key_of(actor, message),
        CHANGE_RECALL,
        message.id,
        now,
        content_type=message.content_type,
    )
    entries: dict[UserId, InboxEntry] = {}
    for user in holders:
        unread = _add_unread(conn, user, message, -1 if counted[user] else 0)
        entries[user] = append_change_entry(conn, user, change, unread)
    return ChangeResult(recalled, entries)


def _clear_body(conn: sqlite3.Connection, message: StoredMessage, now: int) -> None:
    """Empty the body of a recalled message, and of its edits, which would
    show the recalled text too."""
    conn.execute(
        "UPDATE messages SET body = x'', recalled_at = ? WHERE id = ?",
        (now, message.id),
    )
    conn.execute(
        "UPDATE messages SET body = x'' WHERE target = ? AND change = ?",
        (message.id, CHANGE_EDIT),
    )


def _in_timeline(conn: sqlite3.Connection, message: StoredMessage) -> bool:
    row = conn.execute(
        "SELECT timeline_seq IS NOT NULL FROM messages WHERE id = ?", (message.id,)
    ).fetchone()
    return bool(row[0])


def edit_message(
    conn: sqlite3.Connection,
    actor: UserId,
    message_id: MessageId,
    body: bytes,
    now: int,
) -> ChangeResult:
    message = _require_held(conn, message_id, actor).message
    if message.recalled_at:
        raise MessageRecalled(f"message {message_id} was recalled")

    conn.execute(
        "UPDATE messages SET body = ?, edited_at = ? WHERE id = ?",
        (body, now, message.id),
    )
    edited = dataclasses.replace(message, body=body, edited_at=now)
    if _in_timeline(conn, message):
        appended = sqlite_timeline.append_change(
            conn, actor, edited, CHANGE_EDIT, body, now
        )
        return ChangeResult(edited, {}, appended)
    change = insert_change(
        conn,
        actor,
        _key_of(actor, message),
        CHANGE_EDIT,
        message.id,
        now,
        content_type=message.content_type,
        body=body,
    )
    entries = {
        user: append_change_entry(
            conn, user, change, _add_unread(conn, user, message, 0)
        )
        for user in _holders(conn, message, actor)
    }
    return ChangeResult(edited, entries)


def delete_message_for(
    conn: sqlite3.Connection, user_id: UserId, message_id: MessageId, now: int
) -> ChangeResult:
    held = _require_held(conn, message_id, user_id)
    message = held.message
    if held.deleted:
        return ChangeResult(message, {})
    if _in_timeline(conn, message):
        return sqlite_timeline.delete_for(conn, user_id, message, now)

    counted = _counts_as_unread(conn, user_id, message)
    conn.execute(
        "INSERT INTO deleted_messages (user_id, message_id) VALUES (?, ?)",
        (user_id, message.id),
    )
    unread = _add_unread(conn, user_id, message, -1 if counted else 0)
    key = _key_of(user_id, message)
    _skip_deleted_last(conn, user_id, key, message.id)

    change = insert_change(
        conn,
        user_id,
        key,
        CHANGE_DELETE,
        message.id,
        now,
        content_type=message.content_type,
    )
    entry = append_change_entry(conn, user_id, change, unread)
    return ChangeResult(message, {user_id: entry})


def _require_held(
    conn: sqlite3.Connection, message_id: MessageId, user_id: UserId
) -> HeldMessage:
    held = select_held_message(conn, message_id, user_id)
    if held is None:
        raise MessageNotFound(f"no message with id {message_id} for user {user_id}")
    return held


def _key_of(user_id: UserId, message: StoredMessage) -> ConversationKey:
    """Return the message's conversation from the point of view of ``user_id``."""
    if message.group_id is not None:
        return ConversationKey(group=message.group_id)
    peer = message.recipient if user_id == message.sender else message.sender
    return ConversationKey(peer=peer)


def _holds(conn: sqlite3.Connection, user_id: UserId, message: StoredMessage) -> bool:
    if message.group_id is None:
        return user_id in (message.sender, message.recipient)
    row = conn.execute(
        "SELECT 1 FROM conversations WHERE user_id = ? AND peer = 0"
        " AND group_id = ? AND joined_id < ? AND end_id >= ?",
        (user_id, message.group_id, message.id, message.id),
    ).fetchone()
    return row is not None


def _holders(
    conn: sqlite3.Connection, message: StoredMessage, actor: UserId
) -> list[UserId]:
    """Return the users who get a change of the message: those whose inboxes
    have an entry for it, and for a group message only its current members
    and ``actor``. A removed member hears nothing more of the group.

    NOTE: a member who left a group and joined it again holds the messages of
    the first membership, but is found only for those of the current one.
    """
    if message.group_id is None:
        return list(dict.fromkeys((message.sender, message.recipient)))
    rows = conn.execute(
        "SELECT user_id FROM conversations WHERE group_id = ? AND peer = 0"
        " AND joined_id < ? AND end_id >= ? AND (user_id = ? OR user_id IN"
        " (SELECT user_id FROM group_members WHERE group_id = ?)) ORDER BY user_id",
        (message.group_id, message.id, message.id, actor, message.group_id),
    ).fetchall()
    return [UserId(row[0]) for row in rows]


def _counts_as_unread(
    conn: sqlite3.Connection, user_id: UserId, message: StoredMessage
) -> bool:
    """Return whether the message is in the user's unread count now."""
    if message.sender == user_id or message.recalled_at:
        return False
    key = _key_of(user_id, message)
    row = conn.execute(
        "SELECT c.read_id < ?, m.client_id IS NOT NULL,"
        " EXISTS (SELECT 1 FROM deleted_messages AS d"
        " WHERE d.user_id = c.user_id AND d.message_id = m.id)"
        " FROM conversations AS c, messages AS m"
        " WHERE c.user_id = ? AND c.peer = ? AND c.group_id = ? AND m.id = ?",
        (message.id, user_id, key.peer, key.group, message.id),
    ).fetchone()
    return row is not None and bool(row[0]) and bool(row[1]) and not row[2]


def _add_unread(
    conn: sqlite3.Connection, user_id: UserId, message: StoredMessage, delta: int
) -> int:
    """Add ``delta`` to the user's unread count of the message's conversation."""
    key = _key_of(user_id, message)
    row = conn.execute(
        "UPDATE conversations SET unread = unread + ?"
        " WHERE user_id = ? AND peer = ? AND group_id = ? RETURNING unread",
        (delta, user_id, key.peer, key.group),
    ).fetchone()
    return 0 if row is None else int(row[0])


def _skip_deleted_last(
    conn: sqlite3.Connection,
    user_id: UserId,
    key: ConversationKey,
    message_id: MessageId,
) -> None:
    """Show the previous message as the latest when the latest was deleted."""
    row = conn.execute(
        "SELECT last_seq FROM conversations WHERE user_id = ? AND peer = ?"
        " AND group_id = ? AND last_id = ?",
        (user_id, key.peer, key.group, message_id),
    ).fetchone()
    if row is None:
        return
    where, params = conversation_filter(user_id, key)
    # NOTE: scans the user's inbox backwards from the deleted message, so the
    # cost grows with the entries of other conversations in between.
    previous = conn.execute(
        "SELECT i.seq, m.id FROM inbox AS i JOIN messages AS m ON m.id = i.message_id"
        f" WHERE i.user_id = ? AND i.seq < ? AND m.change IS NULL AND {where}"
        " AND NOT EXISTS (SELECT 1 FROM deleted_messages AS d"
        " WHERE d.user_id = i.user_id AND d.message_id = m.id)"
        " ORDER BY i.seq DESC LIMIT 1",
        (user_id, row[0], *params),
    ).fetchone()
    last_seq, last_id = (0, 0) if previous is None else previous
    conn.execute(
        "UPDATE conversations SET last_id = ?, last_seq = ?"
        " WHERE user_id = ? AND peer = ? AND group_id = ?",
        (last_id, last_seq, user_id, key.peer, key.group),
    )
