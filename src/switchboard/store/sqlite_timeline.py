"""SQL for group timelines: large groups with fan-out on read.

A group in ``"read"`` mode stores each message once, in ``messages`` with
``timeline_seq`` set, instead of one inbox entry per member. Members read the
timeline by its own gapless sequence. ``timeline_members`` keeps, per user,
the range of the timeline the user may read and the read position.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    GROUP_MODE_READ,
    ChangeResult,
    ConversationKey,
    Group,
    GroupAppendResult,
    InvalidMention,
    NotMember,
    ReadResult,
    StoredMessage,
    TimelineEntry,
    TimelinePage,
    TimelineState,
)
from switchboard.store.sqlite_changes import (
    CHANGE_DELETE,
    CHANGE_READ,
    append_change_entry,
    insert_change,
)
from switchboard.store.sqlite_rows import (
    MESSAGE_COLUMN_COUNT,
    MESSAGE_COLUMNS,
    message_from_row,
    read_transaction,
)

__all__ = [
    "add_timeline_members",
    "append_change",
    "append_to_timeline",
    "delete_for",
    "leave_timeline",
    "mark_timeline_read",
    "may_read",
    "select_timeline_page",
    "select_timeline_positions",
    "select_timelines_of",
    "switch_to_timeline",
    "timeline_head",
]

# Whether the user (a parameter) deleted message m for themselves.
_DELETED: Final = (
    "EXISTS (SELECT 1 FROM deleted_messages AS d"
    " WHERE d.user_id = ? AND d.message_id = m.id)"
)
# Messages that can be unread: sent by another user (notices have no client
# id) and not recalled.
_COUNTED: Final = "m.client_id IS NOT NULL AND m.sender != ? AND m.recalled_at IS NULL"


def timeline_head(conn: sqlite3.Connection, group_id: GroupId) -> Seq | None:
    """Return the timeline's highest sequence, or None for a ``"write"`` group."""
    row = conn.execute(
        "SELECT head_seq FROM group_timelines WHERE group_id = ?", (group_id,)
    ).fetchone()
    return None if row is None else Seq(row[0])


def switch_to_timeline(conn: sqlite3.Connection, group_id: GroupId, now: int) -> None:
    """Put a ``"write"`` group in ``"read"`` mode, starting an empty timeline.

    Every current member reads the timeline from its first entry. Unread
    counts of the messages stored before the switch are cleared, because the
    conversation list shows the timeline's count from now on.
    """
    conn.execute(
        "INSERT INTO group_timelines (group_id, head_seq, switched_at)"
        " VALUES (?, 0, ?)",
        (group_id, now),
    )
    conn.execute(
        "INSERT INTO timeline_members (group_id, user_id, start_seq, left_seq,"
        " read_seq) SELECT group_id, user_id, 1, NULL, 0 FROM group_members"
        " WHERE group_id = ?"
        " ON CONFLICT (group_id, user_id) DO UPDATE SET start_seq = 1,"
        " left_seq = NULL",
        (group_id,),
    )
    conn.execute(
        "UPDATE conversations SET unread = 0 WHERE peer = 0 AND group_id = ?",
        (group_id,),
    )


def add_timeline_members(
    conn: sqlite3.Connection,
    group_id: GroupId,
    user_ids: Sequence[UserId],
    history: int | None,
) -> None:
    """Let users read the timeline from their join on, plus ``history``
    earlier entries (None: all of them).

    Call it before the join's notice is appended, which is then the first
    entry they read with ``history`` 0.
    """
    head = timeline_head(conn, group_id) or 0
    start = 1 if history is None else max(1, head + 1 - history)
    conn.executemany(
        "INSERT INTO timeline_members (group_id, user_id, start_seq, left_seq,"
        " read_seq) VALUES (?, ?, ?, NULL, ?)"
        " ON CONFLICT (group_id, user_id) DO UPDATE SET"
        " start_seq = excluded.start_seq, left_seq = NULL,"
        " read_seq = max(read_seq, excluded.read_seq)",
        [(group_id, user_id, start, head) for user_id in user_ids],
    )


def leave_timeline(
    conn: sqlite3.Connection, group_id: GroupId, user_id: UserId
) -> None:
    """End the user's access at the timeline's current head: the notice of
    its removal, appended just before."""
    conn.execute(
        "UPDATE timeline_members SET left_seq = (SELECT head_seq FROM"
        " group_timelines WHERE group_id = ?) WHERE group_id = ? AND user_id = ?",
        (group_id, group_id, user_id),
    )


def append_to_timeline(
    conn: sqlite3.Connection,
    group_id: GroupId,
    sender: UserId,
    origin: tuple[DeviceId, ClientMessageId] | None,
    content_type: int,
    body: bytes,
    sent_at: int,
    mentions: tuple[UserId, ...],
) -> GroupAppendResult:
    """Insert a message at the next sequence of the group's timeline.

    ``origin`` is the sender's (device, client id), None for a notice. The
    membership is read in the write transaction, so the message and every
    membership change are ordered. Raises NotMember or InvalidMention.
    """
    members = [
        UserId(row[0])
        for row in conn.execute(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id",
            (group_id,),
        )
    ]
    member_set = set(members)
    if sender not in member_set:
        raise NotMember(group_id, sender)
    for user_id in mentions:
        if user_id not in member_set:
            raise InvalidMention(group_id, user_id)

    row = conn.execute(
        "UPDATE group_timelines SET head_seq = head_seq + 1 WHERE group_id = ?"
        " RETURNING head_seq",
        (group_id,),
    ).fetchone()
    seq = Seq(row[0])
    device, client_id = origin if origin is not None else (None, None)
    # sender_seq is 0: a timeline message has no entry in the sender's inbox.
    row = conn.execute(
        "INSERT INTO messages (sender, sender_device, client_id, group_id,"
        " content_type, body, sent_at, sender_seq, mentions, timeline_seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id",
        (
            sender,
            device,
            client_id,
            group_id,
            content_type,
            body,
            sent_at,
            json.dumps(mentions) if mentions else None,
            seq,
        ),
    ).fetchone()
    message = StoredMessage(
        id=MessageId(row[0]),
        sender=sender,
        recipient=UserId(0),
        content_type=content_type,
        body=body,
        sent_at=sent_at,
        group_id=group_id,
        mentions=mentions,
    )
    return GroupAppendResult(
        message=message,
        seqs={},
        duplicate=False,
        timeline_seq=seq,
        members=tuple(members),
    )


def append_change(
    conn: sqlite3.Connection,
    actor: UserId,
    target: StoredMessage,
    change: int,
    body: bytes,
    now: int,
) -> GroupAppendResult:
    """Append a change of ``target`` (a ``ChangeKind``, such as a recall) to
    the timeline of its group, to push to the current members."""
    group_id = target.group_id
    assert group_id is not None
    members = [
        UserId(row[0])
        for row in conn.execute(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id",
            (group_id,),
        )
    ]
    row = conn.execute(
        "UPDATE group_timelines SET head_seq = head_seq + 1 WHERE group_id = ?"
        " RETURNING head_seq",
        (group_id,),
    ).fetchone()
    seq = Seq(row[0])
    row = conn.execute(
        "INSERT INTO messages (sender, group_id, content_type, body, sent_at,"
        " sender_seq, timeline_seq, change, target)"
        " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id",
        (actor, group_id, target.content_type, body, now, seq, change, target.id),
    ).fetchone()
    message = StoredMessage(
        id=MessageId(row[0]),
        sender=actor,
        recipient=UserId(0),
        content_type=target.content_type,
        body=body,
        sent_at=now,
        group_id=group_id,
        change=change,
        target=target.id,
    )
    return GroupAppendResult(
        message=message,
        seqs={},
        duplicate=False,
        timeline_seq=seq,
        members=tuple(members),
    )


def delete_for(
    conn: sqlite3.Connection, user_id: UserId, message: StoredMessage, now: int
) -> ChangeResult:
    """Delete a timeline message for one user: hide it from the user's pages,
    history, conversation list and unread count, and append a delete entry
    to the user's inbox."""
    group_id = message.group_id
    assert group_id is not None
    conn.execute(
        "INSERT INTO deleted_messages (user_id, message_id) VALUES (?, ?)",
        (user_id, message.id),
    )
    start, head = _access(conn, group_id, user_id)
    read_seq = conn.execute(
        "SELECT read_seq FROM timeline_members WHERE group_id = ? AND user_id = ?",
        (group_id, user_id),
    ).fetchone()[0]
    unread = _count_unread(conn, group_id, user_id, max(read_seq, start - 1), head)
    key = ConversationKey(group=group_id)
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


def may_read(
    conn: sqlite3.Connection, group_id: GroupId, user_id: UserId, seq: int
) -> bool:
    """Return whether the user may read timeline entry ``seq`` of the group."""
    try:
        start, head = _access(conn, group_id, user_id)
    except NotMember:
        return False
    return start <= seq <= head


def select_timeline_page(
    conn: sqlite3.Connection,
    group_id: GroupId,
    user_id: UserId,
    after_seq: int,
    limit: int,
) -> TimelinePage:
    with read_transaction(conn):
        start, head = _access(conn, group_id, user_id)
        low = max(after_seq, start - 1)
        # One row more than the limit shows whether more entries follow.
        rows = conn.execute(
            f"SELECT m.timeline_seq, {MESSAGE_COLUMNS}, {_DELETED}"
            " FROM messages AS m"
            " WHERE m.group_id = ? AND m.timeline_seq > ? AND m.timeline_seq <= ?"
            " ORDER BY m.timeline_seq LIMIT ?",
            (user_id, group_id, low, head, limit + 1),
        ).fetchall()
    entries = [_entry_from_row(row) for row in rows[:limit]]
    return TimelinePage(
        entries=entries,
        has_more=len(rows) > limit,
        head_seq=Seq(head),
        start_seq=Seq(start),
    )


def select_timelines_of(
    conn: sqlite3.Connection, user_id: UserId
) -> list[TimelineState]:
    with read_transaction(conn):
        rows = conn.execute(
            "SELECT tm.group_id, tm.start_seq, tm.left_seq, tm.read_seq,"
            " t.head_seq, g.name, g.created_by, g.created_at"
            " FROM timeline_members AS tm"
            " JOIN group_timelines AS t ON t.group_id = tm.group_id"
            " JOIN groups AS g ON g.id = tm.group_id"
            " WHERE tm.user_id = ? ORDER BY tm.group_id",
            (user_id,),
        ).fetchall()
        return [_state(conn, user_id, row) for row in rows]


def _state(
    conn: sqlite3.Connection, user_id: UserId, row: tuple[Any, ...]
) -> TimelineState:
    group_id, start, left, read_seq, group_head = row[:5]
    group = Group(
        id=GroupId(group_id),
        name=row[5],
        created_by=UserId(row[6]),
        created_at=row[7],
        mode=GROUP_MODE_READ,
    )
    head = group_head if left is None else left
    last_row = conn.execute(
        f"SELECT m.timeline_seq, {MESSAGE_COLUMNS} FROM messages AS m"
        " WHERE m.group_id = ? AND m.timeline_seq >= ? AND m.timeline_seq <= ?"
        f" AND m.change IS NULL AND NOT {_DELETED}"
        " ORDER BY m.timeline_seq DESC LIMIT 1",
        (group_id, start, head, user_id),
    ).fetchone()
    return TimelineState(
        group=group,
        start_seq=Seq(start),
        head_seq=Seq(head),
        left=left is not None,
        last=None if last_row is None else _entry_from_row(last_row),
        read_id=_id_at(conn, group.id, read_seq),
        unread=_count_unread(conn, group.id, user_id, max(read_seq, start - 1), head),
    )


def select_timeline_positions(
    conn: sqlite3.Connection, group_id: GroupId
) -> dict[UserId, tuple[MessageId, MessageId]] | None:
    """Return each current member's read position and joined id as message ids,
    or None for a ``"write"`` group.

    The joined id is that of the entry before the member's ``start_seq``, so
    the member may read the messages with higher ids.
    """
    if timeline_head(conn, group_id) is None:
        return None
    rows = conn.execute(
        "SELECT tm.user_id,"
        " coalesce((SELECT m.id FROM messages AS m WHERE m.group_id = tm.group_id"
        " AND m.timeline_seq = tm.read_seq), 0),"
        " coalesce((SELECT m.id FROM messages AS m WHERE m.group_id = tm.group_id"
        " AND m.timeline_seq = tm.start_seq - 1), 0)"
        " FROM timeline_members AS tm JOIN group_members AS gm"
        " ON gm.group_id = tm.group_id AND gm.user_id = tm.user_id"
        " WHERE tm.group_id = ?",
        (group_id,),
    ).fetchall()
    return {UserId(row[0]): (MessageId(row[1]), MessageId(row[2])) for row in rows}


def mark_timeline_read(
    conn: sqlite3.Connection,
    user_id: UserId,
    group_id: GroupId,
    up_to: MessageId | None,
    now: int,
) -> ReadResult:
    start, head = _access(conn, group_id, user_id)
    read_seq = conn.execute(
        "SELECT read_seq FROM timeline_members WHERE group_id = ? AND user_id = ?",
        (group_id, user_id),
    ).fetchone()[0]
    low = max(read_seq, start - 1)
    bound = 2**63 - 1 if up_to is None else up_to
    row = conn.execute(
        "SELECT max(timeline_seq) FROM messages WHERE group_id = ?"
        " AND timeline_seq > ? AND timeline_seq <= ? AND id <= ?",
        (group_id, low, head, bound),
    ).fetchone()
    target = row[0]
    if target is None:
        unread = _count_unread(conn, group_id, user_id, low, head)
        return ReadResult(_id_at(conn, group_id, read_seq), unread, None)

    senders = conn.execute(
        "SELECT DISTINCT m.sender FROM messages AS m WHERE m.group_id = ?"
        f" AND m.timeline_seq > ? AND m.timeline_seq <= ? AND {_COUNTED}",
        (group_id, low, target, user_id),
    ).fetchall()
    conn.execute(
        "UPDATE timeline_members SET read_seq = ? WHERE group_id = ? AND user_id = ?",
        (target, group_id, user_id),
    )
    read_id = _id_at(conn, group_id, target)
    unread = _count_unread(conn, group_id, user_id, target, head)
    key = ConversationKey(group=group_id)
    change = insert_change(conn, user_id, key, CHANGE_READ, read_id, now)
    return ReadResult(
        read_id=read_id,
        unread=unread,
        entry=append_change_entry(conn, user_id, change, unread),
        notify=tuple(UserId(row[0]) for row in senders),
    )


def _access(
    conn: sqlite3.Connection, group_id: GroupId, user_id: UserId
) -> tuple[int, int]:
    """Return the (start, head) sequences the user may read; raise NotMember."""
    row = conn.execute(
        "SELECT tm.start_seq, coalesce(tm.left_seq, t.head_seq)"
        " FROM timeline_members AS tm"
        " JOIN group_timelines AS t ON t.group_id = tm.group_id"
        " WHERE tm.group_id = ? AND tm.user_id = ?",
        (group_id, user_id),
    ).fetchone()
    if row is None:
        raise NotMember(group_id, user_id)
    return row[0], row[1]


def _count_unread(
    conn: sqlite3.Connection, group_id: GroupId, user_id: UserId, after: int, head: int
) -> int:
    row = conn.execute(
        "SELECT count(*) FROM messages AS m WHERE m.group_id = ?"
        f" AND m.timeline_seq > ? AND m.timeline_seq <= ? AND {_COUNTED}"
        f" AND NOT {_DELETED}",
        (group_id, after, head, user_id, user_id),
    ).fetchone()
    count: int = row[0]
    return count


def _id_at(conn: sqlite3.Connection, group_id: GroupId, seq: int) -> MessageId:
    row = conn.execute(
        "SELECT id FROM messages WHERE group_id = ? AND timeline_seq = ?",
        (group_id, seq),
    ).fetchone()
    return MessageId(0 if row is None else row[0])


def _entry_from_row(row: tuple[Any, ...]) -> TimelineEntry:
    """Build an entry from the timeline seq, the MESSAGE_COLUMNS and, if
    selected, whether the reading user deleted the message."""
    deleted = len(row) > MESSAGE_COLUMN_COUNT + 1 and bool(
        row[MESSAGE_COLUMN_COUNT + 1]
    )
    return TimelineEntry(Seq(row[0]), message_from_row(row, start=1), deleted)
