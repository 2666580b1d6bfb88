"""SQL for inboxes in the PostgreSQL store: sequences, message copies, outbox.

Each inbox entry stores a copy of its message in the owner's database. A
user's next sequence comes from a row lock on ``inbox_heads``, taken in the
transaction that inserts the entry. So concurrent writers to one inbox, in
any number of processes, wait for each other. Sequences stay gapless and
unique, and a reader never sees an entry before one with a lower sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import InboxEntry, InboxPage, StoredMessage
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_conversations import (
    join_conversations,
    lock_heads,
    touch_conversations,
)
from switchboard.store.postgres_rows import (
    COPY_COLUMNS,
    MESSAGE_COLUMNS,
    AppendedCopy,
    OutgoingMessage,
    message_from_row,
    stored_from_row,
)

__all__ = [
    "FirstCopy",
    "PendingCopies",
    "allocate_seqs",
    "append_copies",
    "copy_seq",
    "delete_outbox",
    "find_copies",
    "find_first_copy",
    "insert_copies",
    "insert_outbox",
    "next_message_id",
    "raise_last_client_id",
    "select_conversation_page",
    "select_deleted_ids",
    "select_head_seq",
    "select_inbox_page",
    "select_inbox_seqs",
    "select_outbox",
    "select_outbox_ids",
]


@dataclass(frozen=True, slots=True)
class FirstCopy:
    """The sender's copy of a message stored before under the same client id."""

    message: OutgoingMessage
    sender_seq: Seq
    current: StoredMessage
    """The message as stored now: recalled or edited since, perhaps."""


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
        f"SELECT seq, {COPY_COLUMNS} FROM inbox"
        " WHERE sender = $1 AND sender_device = $2 AND client_id = $3",
        sender,
        device,
        client_id,
    )
    if row is None:
        return None
    return FirstCopy(
        message=message_from_row(row),
        sender_seq=Seq(row["seq"]),
        current=stored_from_row(row),
    )


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
    joined: Mapping[UserId, MessageId] | None = None,
) -> dict[UserId, AppendedCopy]:
    """Append a message (not a change) to the inboxes of ``users``.

    Must run inside a transaction. Updates each owner's conversation and
    returns the copies. ``joined`` gives, for a group message, the group's
    highest message id when each user joined (see join_conversations). With
    ``once``, users whose inbox contains the message already keep their copy,
    which makes a repeated relay harmless.
    """
    ordered = sorted(set(users))
    if not ordered:
        return {}

    existing: dict[UserId, AppendedCopy] = {}
    if once:
        existing = await find_copies(conn, ordered, message.id)
        ordered = [user for user in ordered if user not in existing]
        if not ordered:
            return existing

    seqs = await allocate_seqs(conn, ordered)
    if joined is not None and message.group_id is not None:
        await join_conversations(
            conn, message.group_id, {user: joined[user] for user in ordered}
        )
    unread = await touch_conversations(conn, message, seqs)
    await insert_copies(conn, message, seqs, unread)
    return existing | {user: AppendedCopy(seqs[user], unread[user]) for user in seqs}


async def allocate_seqs(conn: Connection, users: Sequence[UserId]) -> dict[UserId, Seq]:
    """Advance the inbox heads of ``users`` by one; return the new heads.

    The head rows are locked in ascending user id order, so two transactions
    that share inboxes cannot deadlock on them.
    """
    rows = await conn.fetch(
        "INSERT INTO inbox_heads (user_id, head_seq)"
        " SELECT u, 1 FROM unnest($1::bigint[]) AS u ORDER BY u"
        " ON CONFLICT (user_id) DO UPDATE SET head_seq = inbox_heads.head_seq + 1"
        " RETURNING user_id, head_seq",
        sorted(set(users)),
    )
    return {UserId(row["user_id"]): Seq(row["head_seq"]) for row in rows}


async def find_copies(
    conn: Connection, users: Sequence[UserId], message_id: MessageId
) -> dict[UserId, AppendedCopy]:
    """Lock the users' head rows, then return their copies of the message.

    The lock keeps the answer true until the transaction ends, so a copy
    cannot be appended twice by two relays of the same message.
    """
    await lock_heads(conn, users)
    rows = await conn.fetch(
        "SELECT user_id, seq, coalesce(unread, 0) AS unread FROM inbox"
        " WHERE message_id = $1 AND user_id = ANY($2::bigint[])",
        message_id,
        list(users),
    )
    return {
        UserId(row["user_id"]): AppendedCopy(Seq(row["seq"]), row["unread"])
        for row in rows
    }


async def insert_copies(
    conn: Connection,
    message: OutgoingMessage,
    seqs: Mapping[UserId, Seq],
    unread: Mapping[UserId, int],
    bodies: Mapping[UserId, bytes] | None = None,
) -> None:
    """Insert the copies at ``seqs`` with each owner's ``unread`` count.

    ``bodies`` replaces the body in the copies of some users.
    """
    users = list(seqs)
    bodies = bodies or {}
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
        "INSERT INTO inbox (user_id, seq, peer, sender_device, client_id, unread,"
        " body, message_id, sender, recipient, group_id, content_type, sent_at,"
        " mentions, notice, change, target)"
        " SELECT c.user_id, c.seq, c.peer, c.device, c.client_id, c.unread, c.body,"
        " $8, $9, $10, $11, $12, $13, $14, $15, $16, $17"
        " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],"
        " $5::bigint[], $6::bigint[], $7::bytea[])"
        " AS c(user_id, seq, peer, device, client_id, unread, body)",
        users,
        [seqs[user] for user in users],
        [message.peer_of(user) for user in users],
        devices,
        client_ids,
        [unread[user] for user in users],
        [bodies.get(user, message.body) for user in users],
        message.id,
        message.sender,
        message.recipient,
        message.group_id,
        message.content_type,
        message.sent_at,
        list(message.mentions) if message.mentions else None,
        message.notice,
        message.change or None,
        message.target or None,
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


@dataclass(frozen=True, slots=True)
class PendingCopies:
    """An outbox row: a message and where its copies are still to be written."""

    message: OutgoingMessage
    users: list[UserId]
    """Users whose inboxes get a copy."""
    group_id: GroupId | None
    """The group whose history gets the message, if any."""
    joined: dict[UserId, MessageId] | None
    """For a group message, the group's highest message id when each of
    ``users`` joined; None when the row does not say."""


async def insert_outbox(
    conn: Connection,
    message: OutgoingMessage,
    target_users: Sequence[UserId],
    target_group: GroupId | None,
    joined: Mapping[UserId, MessageId] | None = None,
) -> None:
    users = sorted(target_users)
    await conn.execute(
        "INSERT INTO outbox (message_id, target_users, target_group, target_joined,"
        " sender, recipient, group_id, content_type, body, sent_at, mentions,"
        " notice, change, target)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        message.id,
        users,
        target_group,
        None if joined is None else [joined[user] for user in users],
        message.sender,
        message.recipient,
        message.group_id,
        message.content_type,
        message.body,
        message.sent_at,
        list(message.mentions) if message.mentions else None,
        message.notice,
        message.change or None,
        message.target or None,
    )


async def select_outbox(
    conn: Connection, message_id: MessageId
) -> PendingCopies | None:
    row = await conn.fetchrow(
        "SELECT target_users, target_group, target_joined,"
        f" {MESSAGE_COLUMNS} FROM outbox WHERE message_id = $1",
        message_id,
    )
    if row is None:
        return None
    users = [UserId(user) for user in row["target_users"]]
    group = row["target_group"]
    joined = row["target_joined"]
    return PendingCopies(
        message=message_from_row(row),
        users=users,
        group_id=None if group is None else GroupId(group),
        joined=None
        if joined is None
        else {user: MessageId(j) for user, j in zip(users, joined, strict=True)},
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
            f"SELECT seq, coalesce(unread, 0) AS unread, deleted, {COPY_COLUMNS}"
            " FROM inbox WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            user_id,
            after_seq,
            limit + 1,
        )
        head_seq = await select_head_seq(conn, user_id)

    entries = [
        InboxEntry(
            seq=Seq(row["seq"]),
            message=stored_from_row(row),
            unread=row["unread"],
            deleted=row["deleted"],
        )
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
    """Page backwards through the user's copies of messages with ``peer_id``.

    Change entries and the messages the user deleted are left out.
    """
    if before_id is None:
        id_filter = ""
        params: tuple[int, ...] = (user_id, peer_id, limit + 1)
    else:
        id_filter = " AND message_id < $4"
        params = (user_id, peer_id, limit + 1, before_id)

    rows = await conn.fetch(
        f"SELECT {COPY_COLUMNS} FROM inbox WHERE user_id = $1 AND peer = $2"
        f"{id_filter} AND change IS NULL AND NOT deleted"
        " ORDER BY message_id DESC LIMIT $3",
        *params,
    )
    messages = [stored_from_row(row) for row in rows[:limit]]
    return messages, len(rows) > limit


async def select_deleted_ids(
    conn: Connection, user_id: UserId, message_ids: Sequence[MessageId]
) -> set[MessageId]:
    """Return those of ``message_ids`` that the user deleted for themselves."""
    rows = await conn.fetch(
        "SELECT message_id FROM inbox WHERE user_id = $1"
        " AND message_id = ANY($2::bigint[]) AND deleted",
        user_id,
        list(message_ids),
    )
    return {MessageId(row["message_id"]) for row in rows}


async def select_inbox_seqs(
    conn: Connection, user_id: UserId, message_ids: Sequence[MessageId]
) -> dict[MessageId, Seq]:
    """Return {message id: seq} for those of ``message_ids`` in the user's inbox."""
    rows = await conn.fetch(
        "SELECT message_id, seq FROM inbox"
        " WHERE user_id = $1 AND message_id = ANY($2::bigint[])",
        user_id,
        list(message_ids),
    )
    return {MessageId(row["message_id"]): Seq(row["seq"]) for row in rows}
