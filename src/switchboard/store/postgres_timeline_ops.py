"""Group timeline operations of the PostgreSQL store that span databases.

PostgresStore calls these with the connections of one store operation. The
SQL run in one database is in postgres_timeline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from switchboard.ids import GroupId, MessageId, Seq, UserId
from switchboard.store import postgres_groups as groups_sql
from switchboard.store import postgres_inbox as inbox_sql
from switchboard.store import postgres_timeline as timeline_sql
from switchboard.store.base import (
    GROUP_MODE_READ,
    ChangeResult,
    Group,
    GroupAppendResult,
    GroupNotice,
    HeldMessage,
    InboxEntry,
    InvalidMention,
    MessageRecalled,
    NotMember,
    StoredMessage,
)
from switchboard.store.postgres_changes import CHANGE_DELETE, CHANGE_RECALL
from switchboard.store.postgres_conn import Connection, ConnectionSet, transact
from switchboard.store.postgres_rows import OutgoingMessage

__all__ = [
    "append_to_timeline",
    "change_in_timeline",
    "change_timeline",
    "delete_in_timeline",
    "held_in_timeline",
    "switch_if_large",
]


async def switch_if_large(
    conn: Connection, group: Group, size: int, timeline_above: int | None
) -> Group:
    """Switch a ``"write"`` group of more than ``timeline_above`` members to
    ``"read"`` mode; return the group as it is now."""
    if timeline_above is None or size <= timeline_above:
        return group
    if group.mode == GROUP_MODE_READ:
        return group
    await timeline_sql.switch_to_timeline(conn, group.id)
    return dataclasses.replace(group, mode=GROUP_MODE_READ)


async def change_timeline(
    conns: ConnectionSet,
    conn: Connection,
    databases: int,
    group_id: GroupId,
    recipients: Mapping[UserId, MessageId],
    notice: GroupNotice | None,
    history: int | None,
) -> GroupAppendResult | None:
    """Update who may read the timeline and append the notice to it, in the
    transaction open on the group's database ``conn``.

    ``recipients`` are the members who get the notice: those after the
    change, and a removed member.
    """
    await timeline_sql.open_timeline_access(conn, group_id, list(recipients), history)
    if notice is None:
        await timeline_sql.close_timeline_access(conn, group_id)
        return None
    if notice.actor not in recipients:
        raise NotMember(group_id, notice.actor)
    message = OutgoingMessage(
        id=await inbox_sql.next_message_id(await conns.get(0)),
        sender=notice.actor,
        recipient=None,
        group_id=group_id,
        content_type=notice.content_type,
        body=notice.body(group_id),
        sent_at=notice.sent_at,
        notice=True,
    )
    seq = await timeline_sql.insert_timeline_message(conn, group_id, message)
    await timeline_sql.close_timeline_access(conn, group_id)
    if seq == 1:
        await _clear_group_unread(conns, databases, group_id)
    return GroupAppendResult(
        message=message.stored(),
        seqs={},
        duplicate=False,
        timeline_seq=seq,
        members=tuple(recipients),
    )


async def _clear_group_unread(
    conns: ConnectionSet, databases: int, group_id: GroupId
) -> None:
    """Clear the members' unread counts of a group that became large.

    The conversation list shows the timeline's count from now on. The rows
    are in every member's database; the group's database is cleared in the
    open transaction, the others each in their own.
    """
    for database in range(databases):
        conn = await conns.get(database)
        await conn.execute(
            "UPDATE conversations SET unread = 0 WHERE peer = 0 AND group_id = $1",
            group_id,
        )


async def append_to_timeline(
    conns: ConnectionSet,
    group_conn: Connection,
    origin_db: int,
    draft: OutgoingMessage,
    members: Mapping[UserId, MessageId],
) -> GroupAppendResult:
    """Append a message to a timeline; the caller holds the group's lock.

    ``origin_db`` is the sender's database. Raises NotMember or
    InvalidMention.
    """
    assert draft.origin is not None and draft.group_id is not None
    device, client_id = draft.origin
    group_id = draft.group_id
    first = await timeline_sql.find_timeline_copy(
        group_conn, group_id, draft.sender, device, client_id
    )
    if first is not None:
        return GroupAppendResult(
            message=first.message,
            seqs={},
            duplicate=True,
            timeline_seq=first.seq,
        )
    _check_members(group_id, draft, members)

    async def store() -> tuple[OutgoingMessage, Seq]:
        message_id = await inbox_sql.next_message_id(await conns.get(0))
        message = dataclasses.replace(draft, id=message_id)
        seq = await timeline_sql.insert_timeline_message(group_conn, group_id, message)
        return message, seq

    message, seq = await transact(group_conn, "append_to_timeline", store)
    # NOTE: written after the timeline commits; if this fails, the resend
    # is still found as a duplicate by find_timeline_copy.
    origin = await conns.get(origin_db)
    await inbox_sql.raise_last_client_id(origin, draft.sender, device, client_id)
    return GroupAppendResult(
        message=message.stored(),
        seqs={},
        duplicate=False,
        timeline_seq=seq,
        members=tuple(members),
    )


def _check_members(
    group_id: GroupId, draft: OutgoingMessage, members: Mapping[UserId, MessageId]
) -> None:
    if draft.sender not in members:
        raise NotMember(group_id, draft.sender)
    for user_id in draft.mentions:
        if user_id not in members:
            raise InvalidMention(group_id, user_id)


async def held_in_timeline(
    conns: ConnectionSet, databases: int, message_id: MessageId, viewer: UserId
) -> HeldMessage | None:
    """Return a timeline message that ``viewer`` may read, or None; the
    connections to all ``databases`` must be held."""
    for database in range(databases):
        conn = await conns.get(database)
        found = await timeline_sql.find_timeline_message(conn, message_id)
        if found is None:
            continue
        group_id, entry, notice = found
        if not await timeline_sql.may_read(conn, group_id, viewer, entry.seq):
            return None
        deleted = await timeline_sql.select_deleted_ids(
            conn, group_id, viewer, [message_id]
        )
        return HeldMessage(entry.message, deleted=bool(deleted), notice=notice)
    return None


async def delete_in_timeline(
    conns: ConnectionSet,
    group_db: int,
    user_db: int,
    user_id: UserId,
    held: HeldMessage,
    now: int,
) -> ChangeResult:
    """Delete a timeline message for one user: hide it from what the user
    reads, in the group's database, and append a delete entry to the user's
    inbox. The connections to all databases must be held."""
    message = held.message
    group_id = message.group_id
    assert group_id is not None
    if held.deleted:
        return ChangeResult(message, {})
    group_conn = await conns.get(group_db)
    unread = await transact(
        group_conn,
        "delete_in_timeline",
        lambda: timeline_sql.delete_for(group_conn, group_id, user_id, message.id),
    )
    change = OutgoingMessage(
        id=await inbox_sql.next_message_id(await conns.get(0)),
        sender=user_id,
        recipient=None,
        group_id=group_id,
        content_type=message.content_type,
        body=b"",
        sent_at=now,
        change=CHANGE_DELETE,
        target=message.id,
    )
    user_conn = await conns.get(user_db)

    async def append() -> Seq:
        seqs = await inbox_sql.allocate_seqs(user_conn, [user_id])
        await inbox_sql.insert_copies(user_conn, change, seqs, {user_id: unread})
        return seqs[user_id]

    # NOTE: if this fails after the deletion committed, the user's other
    # devices learn of it from the next history or conversation list only.
    seq = await transact(user_conn, "delete_in_timeline", append)
    entry = InboxEntry(seq, change.stored(), unread)
    return ChangeResult(message, {user_id: entry})


async def change_in_timeline(
    conns: ConnectionSet,
    conn: Connection,
    actor: UserId,
    held: HeldMessage,
    kind: int,
    body: bytes,
    now: int,
) -> ChangeResult:
    """Recall or edit a timeline message and append the change to the
    timeline; ``conn`` is the group's database, whose lock the caller holds.

    Raises MessageRecalled for an edit of a recalled message.
    """
    target = held.message
    group_id = target.group_id
    assert group_id is not None
    if kind == CHANGE_RECALL and target.recalled_at:
        return ChangeResult(target, {})
    if kind != CHANGE_RECALL and target.recalled_at:
        raise MessageRecalled(f"message {target.id} was recalled")
    changed = _changed(target, kind, body, now)
    change = OutgoingMessage(
        id=await inbox_sql.next_message_id(await conns.get(0)),
        sender=actor,
        recipient=None,
        group_id=group_id,
        content_type=target.content_type,
        body=changed.body,
        sent_at=now,
        change=kind,
        target=target.id,
    )

    async def apply() -> tuple[Seq, list[UserId]]:
        await timeline_sql.change_body(conn, group_id, target.id, kind, body, now)
        seq = await timeline_sql.insert_timeline_message(conn, group_id, change)
        members = await groups_sql.select_member_joins(conn, group_id)
        return seq, list(members)

    seq, members = await transact(conn, "change_in_timeline", apply)
    appended = GroupAppendResult(
        message=change.stored(),
        seqs={},
        duplicate=False,
        timeline_seq=seq,
        members=tuple(members),
    )
    return ChangeResult(changed, {}, appended)


def _changed(target: StoredMessage, kind: int, body: bytes, now: int) -> StoredMessage:
    """Return ``target`` after a recall, or after an edit to ``body``."""
    if kind == CHANGE_RECALL:
        return dataclasses.replace(target, body=b"", recalled_at=now)
    return dataclasses.replace(target, body=body, edited_at=now)
