"""Read positions in the PostgreSQL store: moving them, and counting readers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from switchboard.ids import MessageId, UserId
from switchboard.store.base import ConversationKey, InboxEntry, ReadCount, ReadResult
from switchboard.store.postgres_changes import CHANGE_READ, append_change_copies
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_conversations import (
    count_unread,
    lock_heads,
)
from switchboard.store.postgres_rows import OutgoingMessage

__all__ = ["count_readers", "mark_read"]


async def mark_read(
    conn: Connection,
    user_id: UserId,
    key: ConversationKey,
    up_to: MessageId | None,
    now: int,
    new_id: Callable[[], Awaitable[MessageId]],
) -> ReadResult | None:
    """Move the read position in the user's database, as Store.mark_read does.

    Must run inside a transaction. ``new_id`` allocates the id of the read
    entry. Returns None when the user has no row for the conversation.
    """
    await lock_heads(conn, [user_id])
    row = await conn.fetchrow(
        "SELECT end_id, read_id, unread FROM conversations"
        " WHERE user_id = $1 AND peer = $2 AND group_id = $3",
        user_id,
        key.peer,
        key.group,
    )
    if row is None:
        return None
    end_id, read_id = row["end_id"], row["read_id"]
    target = end_id if up_to is None else min(up_to, end_id)
    if target <= read_id:
        return ReadResult(MessageId(read_id), row["unread"], None)

    unread = await count_unread(conn, user_id, key, MessageId(target))
    notify = await _owners_of_read_messages(conn, user_id, key, read_id, target)
    await conn.execute(
        "UPDATE conversations SET read_id = $4, unread = $5"
        " WHERE user_id = $1 AND peer = $2 AND group_id = $3",
        user_id,
        key.peer,
        key.group,
        target,
        unread,
    )

    change = OutgoingMessage(
        id=await new_id(),
        sender=user_id,
        recipient=None if key.group else key.peer,
        group_id=key.group or None,
        content_type=0,
        body=b"",
        sent_at=now,
        change=CHANGE_READ,
        target=MessageId(target),
    )
    copy = (await append_change_copies(conn, change, [user_id], once=False))[user_id]
    entry = InboxEntry(copy.seq, change.stored(), copy.unread)
    return ReadResult(MessageId(target), unread, entry, notify)


async def _owners_of_read_messages(
    conn: Connection,
    user_id: UserId,
    key: ConversationKey,
    after_id: int,
    up_to: int,
) -> tuple[UserId, ...]:
    if not key.group:
        return () if key.peer == user_id else (key.peer,)
    rows = await conn.fetch(
        "SELECT DISTINCT sender FROM inbox WHERE user_id = $1 AND group_id = $2"
        " AND message_id > $3 AND message_id <= $4 AND change IS NULL"
        " AND NOT notice AND sender <> $1 ORDER BY sender",
        user_id,
        key.group,
        after_id,
        up_to,
    )
    return tuple(UserId(row["sender"]) for row in rows)


def count_readers(
    message_ids: Sequence[MessageId],
    members: Mapping[UserId, MessageId],
    senders: Mapping[MessageId, UserId],
    read_ids: Mapping[UserId, MessageId],
) -> list[ReadCount]:
    """Count the readers of each message, as Store.group_read_counts does.

    ``members`` maps each member to its joined_id, ``senders`` each message
    sent by a user to its sender, and ``read_ids`` members to their read
    positions (0 when absent).
    """
    counts = []
    for message_id in dict.fromkeys(message_ids):
        sender = senders.get(message_id)
        if sender is None:
            continue
        # A member who joined after the message never had it.
        positions = [
            read_ids.get(member, MessageId(0))
            for member, joined_id in members.items()
            if member != sender and joined_id < message_id
        ]
        read = sum(1 for read_id in positions if read_id >= message_id)
        counts.append(ReadCount(message_id, read, len(positions)))
    return counts
