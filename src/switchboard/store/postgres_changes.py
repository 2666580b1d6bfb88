"""Change entries of the PostgreSQL store: inbox entries that record a change.

A change (a read, recall, edit or deletion) is written like a message: it
gets a message id and a copy in each inbox it concerns, with ``change`` set
to its kind and ``target`` to the message it refers to. It belongs to the
conversation it changes and has no client id.

Appending a change's copy to an inbox also applies the change to the owner's
copy of the target, in the same transaction. The copies of a recall and of
an edit reach other databases through the outbox, so they can arrive in
either order. Both orders end alike: a recalled copy keeps its empty body,
and an edit never overwrites the body of a later edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from switchboard.ids import GroupId, MessageId, UserId
from switchboard.store.base import ConversationKey
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_conversations import (
    COUNTED,
    add_unread,
    copy_filter,
    select_unread,
)
from switchboard.store.postgres_inbox import allocate_seqs, find_copies, insert_copies
from switchboard.store.postgres_rows import AppendedCopy, OutgoingMessage

__all__ = [
    "CHANGE_DELETE",
    "CHANGE_EDIT",
    "CHANGE_READ",
    "CHANGE_RECALL",
    "append_change_copies",
    "apply_group_change",
]

# The kinds match ChangeKind of the wire schema.
CHANGE_READ: Final = 1
"""A read: the sender read its conversation up to ``target``."""
CHANGE_RECALL: Final = 2
"""A recall of ``target`` by its sender."""
CHANGE_EDIT: Final = 3
"""An edit: ``body`` replaced the body of ``target``."""
CHANGE_DELETE: Final = 4
"""A deletion of ``target`` for the sender of the change only."""


async def append_change_copies(
    conn: Connection,
    change: OutgoingMessage,
    users: Sequence[UserId],
    *,
    once: bool,
) -> dict[UserId, AppendedCopy]:
    """Append a change to the inboxes of ``users``; return the copies.

    Must run inside a transaction. Each copy carries the owner's unread count
    of the conversation as it is then. With ``once``, users whose inbox
    contains the change already keep their copy.
    """
    ordered = sorted(set(users))
    if not ordered:
        return {}

    existing: dict[UserId, AppendedCopy] = {}
    if once:
        existing = await find_copies(conn, ordered, change.id)
        ordered = [user for user in ordered if user not in existing]
        if not ordered:
            return existing

    seqs = await allocate_seqs(conn, ordered)
    unread: dict[UserId, int] = {}
    bodies: dict[UserId, bytes] = {}
    # NOTE: a few queries per user, so a recall in a large group costs round
    # trips in proportion to the holders in each database.
    for user in ordered:
        unread[user], body = await _apply(conn, user, change)
        if body != change.body:
            bodies[user] = body
    await insert_copies(conn, change, seqs, unread, bodies)
    return existing | {user: AppendedCopy(seqs[user], unread[user]) for user in seqs}


async def _apply(
    conn: Connection, user_id: UserId, change: OutgoingMessage
) -> tuple[int, bytes]:
    """Apply a change to the user's copy of its target.

    Returns the user's unread count of the conversation afterwards and the
    body of the user's copy of the change. A read changes nothing here,
    because mark_read moved the read position already.
    """
    key = change.key_of(user_id)
    body = change.body
    if change.change == CHANGE_RECALL:
        await _recall(conn, user_id, key, change)
    elif change.change == CHANGE_EDIT:
        body = await _edit(conn, user_id, change)
    elif change.change == CHANGE_DELETE:
        await _delete(conn, user_id, key, change.target)
    return await select_unread(conn, user_id, key), body


async def _recall(
    conn: Connection, user_id: UserId, key: ConversationKey, change: OutgoingMessage
) -> None:
    counted = await _counts_as_unread(conn, user_id, change.target)
    await conn.execute(
        "UPDATE inbox SET body = '', recalled_at = $3"
        " WHERE user_id = $1 AND message_id = $2 AND recalled_at IS NULL",
        user_id,
        change.target,
        change.sent_at,
    )
    # The bodies of its edits would show the recalled text too.
    await conn.execute(
        "UPDATE inbox SET body = '' WHERE user_id = $1 AND target = $2 AND change = $3",
        user_id,
        change.target,
        CHANGE_EDIT,
    )
    if counted:
        await add_unread(conn, user_id, key, -1)


async def _edit(conn: Connection, user_id: UserId, change: OutgoingMessage) -> bytes:
    """Replace the body of the user's copy; return the body of the edit's copy."""
    row = await conn.fetchrow(
        "SELECT recalled_at IS NOT NULL AS recalled,"
        " EXISTS (SELECT 1 FROM inbox AS e WHERE e.user_id = i.user_id"
        " AND e.target = i.message_id AND e.change = $3 AND e.message_id > $4)"
        " AS overwritten"
        " FROM inbox AS i WHERE i.user_id = $1 AND i.message_id = $2",
        user_id,
        change.target,
        CHANGE_EDIT,
        change.id,
    )
    if row is None:
        return change.body
    if row["recalled"]:
        return b""  # as the recall emptied the edits before it
    if row["overwritten"]:
        return change.body
    await conn.execute(
        "UPDATE inbox SET body = $3, edited_at = $4"
        " WHERE user_id = $1 AND message_id = $2",
        user_id,
        change.target,
        change.body,
        change.sent_at,
    )
    return change.body


async def _delete(
    conn: Connection, user_id: UserId, key: ConversationKey, target: MessageId
) -> None:
    counted = await _counts_as_unread(conn, user_id, target)
    await conn.execute(
        "UPDATE inbox SET deleted = true WHERE user_id = $1 AND message_id = $2",
        user_id,
        target,
    )
    if counted:
        await add_unread(conn, user_id, key, -1)
    await _skip_deleted_last(conn, user_id, key, target)


async def _counts_as_unread(
    conn: Connection, user_id: UserId, message_id: MessageId
) -> bool:
    """Return whether the user's copy of the message is in the unread count."""
    counted = await conn.fetchval(
        "SELECT c.read_id < i.message_id FROM inbox AS i JOIN conversations AS c"
        " ON c.user_id = i.user_id AND c.peer = coalesce(i.peer, 0)"
        " AND c.group_id = coalesce(i.group_id, 0)"
        f" WHERE i.user_id = $1 AND i.message_id = $2 AND {COUNTED}"
        " AND i.sender <> $1",
        user_id,
        message_id,
    )
    return bool(counted)


async def _skip_deleted_last(
    conn: Connection, user_id: UserId, key: ConversationKey, message_id: MessageId
) -> None:
    """Show the previous message as the latest when the latest was deleted."""
    shown = await conn.fetchval(
        "SELECT last_id FROM conversations"
        " WHERE user_id = $1 AND peer = $2 AND group_id = $3",
        user_id,
        key.peer,
        key.group,
    )
    if shown != message_id:
        return
    where, value = copy_filter(key, 2)
    previous = await conn.fetchrow(
        "SELECT i.seq, i.message_id FROM inbox AS i WHERE i.user_id = $1"
        f" AND {where} AND i.change IS NULL AND NOT i.deleted"
        " ORDER BY i.message_id DESC LIMIT 1",
        user_id,
        value,
    )
    last_seq, last_id = (0, 0) if previous is None else tuple(previous)
    await conn.execute(
        "UPDATE conversations SET last_id = $4, last_seq = $5"
        " WHERE user_id = $1 AND peer = $2 AND group_id = $3",
        user_id,
        key.peer,
        key.group,
        last_id,
        last_seq,
    )


async def apply_group_change(
    conn: Connection, group_id: GroupId, change: OutgoingMessage
) -> None:
    """Apply a recall or an edit to the group's history; others change nothing.

    Idempotent, and gives the same history in whichever order a recall and
    edits of one message arrive.
    """
    if change.change == CHANGE_RECALL:
        await conn.execute(
            "UPDATE group_messages SET body = '', recalled_at = $3"
            " WHERE group_id = $1 AND message_id = $2 AND recalled_at IS NULL",
            group_id,
            change.target,
            change.sent_at,
        )
    elif change.change == CHANGE_EDIT:
        await conn.execute(
            "UPDATE group_messages SET body = $3, edited_at = $4, edit_id = $5"
            " WHERE group_id = $1 AND message_id = $2 AND recalled_at IS NULL"
            " AND coalesce(edit_id, 0) < $5",
            group_id,
            change.target,
            change.body,
            change.sent_at,
            change.id,
        )
