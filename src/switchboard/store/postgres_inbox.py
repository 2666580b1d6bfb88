"""SQL for inboxes in the PostgreSQL store: sequences, message copies, outbox.

Each inbox entry stores a copy of its message in the owner's database. A
user's next sequence comes from a row lock on ``inbox_heads``, taken in the
transaction that inserts the entry. So concurrent writers to one inbox, in
any number of processes, wait for each other. Sequences stay gapless and
unique, and a reader never sees an entry before one with a lower sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import InboxEntry, InboxPage, StoredMessage
from switchboard.store.postgres_conn import Connection

__all__ = [
    "FirstCopy",
    "OutgoingMessage",
    "append_copies",
    "copy_seq",
    "delete_outbox",
    "find_first_copy",
    "insert_outbox",
    "next_message_id",
    "raise_last_client_id",
    "select_conversation_page",
    "select_head_seq",
    "select_inbox_page",
    "select_outbox",
    "select_outbox_ids",
]

_COPY_COLUMNS: Final = (
    "message_id, sender, recipient, group_id, content_type, body, sent_at, mentions"
)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message being written: the content that every inbox copy repeats."""

    id: MessageId
    sender: UserId
    recipient: UserId | None
    """The recipient of a one-to-one message; None for a group message."""
    group_id: GroupId | None
    content_type: int
    body: bytes
    sent_at: int
    mentions: tuple[UserId, ...] = ()
    origin: tuple[DeviceId, ClientMessageId] | None = None
    """The sender's (device, client id); None for a group notice."""

    def stored(self) -> StoredMessage:
        return StoredMessage(
            id=self.id,
            sender=self.sender,
            recipient=UserId(0) if self.recipient is None else self.recipient,
            content_type=self.content_type,
            body=self.body,
            sent_at=self.sent_at,
            group_id=self.group_id,
            mentions=self.mentions,
        )

    def peer_of(self, user_id: UserId) -> UserId | None:
        """Return the other user of a one-to-one message, seen from ``user_id``."""
        if self.recipient is None:
            return None
        return self.recipient if user_id == self.sender else self.sender


@dataclass(frozen=True, slots=True)
class FirstCopy:
    """The sender's copy of a message stored before under the same client id."""

    message: OutgoingMessage
    sender_seq: Seq


def _message_from_row(row: asyncpg.Record) -> OutgoingMessage:
    mentions = row["mentions"]
    return OutgoingMessage(
        id=MessageId(row["message_id"]),
        sender=UserId(row["sender"]),
        recipient=None if row["recipient"] is None else UserId(row["recipient"]),
        group_id=None if row["group_id"] is None else GroupId(row["group_id"]),
        content_type=row["content_type"],
        body=row["body"],
        sent_at=row["sent_at"],
        mentions=() if mentions is None else tuple(UserId(u) for u in mentions),
    )


async def next_message_id(conn: Connection) -> MessageId:
    """Allocate a message id from database 0's sequence; ids only grow."""
    return MessageId(await conn.fetchval("SELECT nextval('message_ids')"))


async def find_first_copy(
    conn: Connection,
    sender: UserId,
    device: DeviceId,
    client_id: ClientMessageId,
) -> FirstCopy | None:
    """Return the sender's copy of the message with this client id, if stored."""
    row = await conn.fetchrow(
        f"SELECT seq, {_COPY_COLUMNS} FROM inbox"
        " WHERE sender = $1 AND sender_device = $2 AND client_id = $3",
        sender,
        device,
        client_id,
    )
    if row is None:
        return None
    return FirstCopy(message=_message_from_row(row), sender_seq=Seq(row["seq"]))


async def copy_seq(
    conn: Connection, user_id: UserId, message_id: MessageId
) -> Seq | None:
    """Return the sequence of the message in the user's inbox, if it is there."""
    seq = await conn.fetchval(
        "SELECT seq FROM inbox WHERE user_id = $1 AND message_id = $2",
        user_id,
        message_id,
    )
    return None if seq is None else Seq(seq)


async def append_copies(
    conn: Connection,
    message: OutgoingMessage,
    users: Sequence[UserId],
    *,
    once: bool,
) -> dict[UserId, Seq]:
    """Append the message to the inboxes of ``users``; return their sequences.

    Must run inside a transaction. The head rows are locked in ascending user
    id order, so two transactions that share inboxes cannot deadlock on
    them. With ``once``, users whose inbox contains the message already keep
    their entry and sequence, which makes a repeated relay harmless.
    """
    ordered = sorted(set(users))
    if not ordered:
        return {}

    existing: dict[UserId, Seq] = {}
    if once:
        existing = await _lock_and_find_copies(conn, ordered, message.id)
        ordered = [user for user in ordered if user not in existing]
        if not ordered:
            return existing

    rows = await conn.fetch(
        "INSERT INTO inbox_heads (user_id, head_seq)"
        " SELECT u, 1 FROM unnest($1::bigint[]) AS u ORDER BY u"
        " ON CONFLICT (user_id) DO UPDATE SET head_seq = inbox_heads.head_seq + 1"
        " RETURNING user_id, head_seq",
        ordered,
    )
    seqs = {UserId(row["user_id"]): Seq(row["head_seq"]) for row in rows}
    await _insert_copies(conn, message, seqs)
    return existing | seqs


async def _lock_and_find_copies(
    conn: Connection, ordered: list[UserId], message_id: MessageId
) -> dict[UserId, Seq]:
    # The no-op update locks each head row, creating it if needed, so the
    # check below cannot race with another relay of the same message.
    await conn.execute(
        "INSERT INTO inbox_heads (user_id, head_seq)"
        " SELECT u, 0 FROM unnest($1::bigint[]) AS u ORDER BY u"
        " ON CONFLICT (user_id) DO UPDATE SET head_seq = inbox_heads.head_seq",
        ordered,
    )
    rows = await conn.fetch(
        "SELECT user_id, seq FROM inbox WHERE message_id = $1 AND user_id = ANY($2)",
        message_id,
        ordered,
    )
    return {UserId(row["user_id"]): Seq(row["seq"]) for row in rows}


async def _insert_copies(
    conn: Connection, message: OutgoingMessage, seqs: dict[UserId, Seq]
) -> None:
    users = list(seqs)
    devices: list[str | None] = []
    client_ids: list[int | None] = []
    for user in users:
        # Only the sender's own copy carries the key that deduplicates resends.
        if message.origin is not None and user == message.sender:
            devices.append(message.origin[0])
            client_ids.append(message.origin[1])
        else:
            devices.append(None)
            client_ids.append(None)

    await conn.execute(
        "INSERT INTO inbox (user_id, seq, peer, sender_device, client_id,"
        " message_id, sender, recipient, group_id, content_type, body, sent_at,"
        " mentions)"
        " SELECT c.user_id, c.seq, c.peer, c.device, c.client_id,"
        " $6, $7, $8, $9, $10, $11, $12, $13"
        " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],"
        " $5::bigint[]) AS c(user_id, seq, peer, device, client_id)",
        users,
        [seqs[user] for user in users],
        [message.peer_of(user) for user in users],
        devices,
        client_ids,
        message.id,
        message.sender,
        message.recipient,
        message.group_id,
        message.content_type,
        message.body,
        message.sent_at,
        list(message.mentions) if message.mentions else None,
    )


async def raise_last_client_id(
    conn: Connection,
    user_id: UserId,
    device: DeviceId,
    client_id: ClientMessageId,
) -> None:
    await conn.execute(
        "INSERT INTO devices (user_id, device, cursor, last_client_id)"
        " VALUES ($1, $2, 0, $3)"
        " ON CONFLICT (user_id, device) DO UPDATE"
        " SET last_client_id = greatest(devices.last_client_id,"
        " excluded.last_client_id)",
        user_id,
        device,
        client_id,
    )


# Outbox: copies still to be written to other databases.


async def insert_outbox(
    conn: Connection,
    message: OutgoingMessage,
    target_users: Sequence[UserId],
    target_group: GroupId | None,
) -> None:
    await conn.execute(
        "INSERT INTO outbox (message_id, target_users, target_group, sender,"
        " recipient, group_id, content_type, body, sent_at, mentions)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        message.id,
        sorted(target_users),
        target_group,
        message.sender,
        message.recipient,
        message.group_id,
        message.content_type,
        message.body,
        message.sent_at,
        list(message.mentions) if message.mentions else None,
    )


async def select_outbox(
    conn: Connection, message_id: MessageId
) -> tuple[OutgoingMessage, list[UserId], GroupId | None] | None:
    """Return a pending message, its target users and target group, if any."""
    row = await conn.fetchrow(
        f"SELECT target_users, target_group, {_COPY_COLUMNS} FROM outbox"
        " WHERE message_id = $1",
        message_id,
    )
    if row is None:
        return None
    group = row["target_group"]
    return (
        _message_from_row(row),
        [UserId(user) for user in row["target_users"]],
        None if group is None else GroupId(group),
    )


async def select_outbox_ids(conn: Connection, limit: int) -> list[MessageId]:
    """Return the ids of the oldest pending messages, ascending."""
    rows = await conn.fetch(
        "SELECT message_id FROM outbox ORDER BY message_id LIMIT $1", limit
    )
    return [MessageId(row["message_id"]) for row in rows]


async def delete_outbox(conn: Connection, message_id: MessageId) -> None:
    await conn.execute("DELETE FROM outbox WHERE message_id = $1", message_id)


# Reads.


async def select_head_seq(conn: Connection, user_id: UserId) -> Seq:
    head = await conn.fetchval(
        "SELECT head_seq FROM inbox_heads WHERE user_id = $1", user_id
    )
    return Seq(0 if head is None else head)


async def select_inbox_page(
    conn: Connection, user_id: UserId, after_seq: Seq, limit: int
) -> InboxPage:
    # One snapshot for the entries and the head; one row more than the limit
    # shows whether more entries follow.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            f"SELECT seq, {_COPY_COLUMNS} FROM inbox"
            " WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            user_id,
            after_seq,
            limit + 1,
        )
        head_seq = await select_head_seq(conn, user_id)

    entries = [
        InboxEntry(seq=Seq(row["seq"]), message=_message_from_row(row).stored())
        for row in rows[:limit]
    ]
    return InboxPage(entries=entries, has_more=len(rows) > limit, head_seq=head_seq)


async def select_conversation_page(
    conn: Connection,
    user_id: UserId,
    peer_id: UserId,
    before_id: MessageId | None,
    limit: int,
) -> tuple[list[StoredMessage], bool]:
    """Page backwards through the user's copies of messages with ``peer_id``."""
    if before_id is None:
        rows = await conn.fetch(
            f"SELECT {_COPY_COLUMNS} FROM inbox WHERE user_id = $1 AND peer = $2"
            " ORDER BY message_id DESC LIMIT $3",
            user_id,
            peer_id,
            limit + 1,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {_COPY_COLUMNS} FROM inbox WHERE user_id = $1 AND peer = $2"
            " AND message_id < $3 ORDER BY message_id DESC LIMIT $4",
            user_id,
            peer_id,
            before_id,
            limit + 1,
        )
    messages = [_message_from_row(row).stored() for row in rows[:limit]]
    return messages, len(rows) > limit
