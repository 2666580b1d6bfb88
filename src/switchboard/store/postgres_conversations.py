"""Conversation rows of the PostgreSQL store, kept in the user's database.

A row keeps the user's read position and unread count of one conversation,
and which message the conversation list shows as its latest. Every write of a
copy updates the row of the copy's conversation in the same transaction, so
the count is exact whatever device reads it.

Concurrent writers and relayed copies can append the copies of a conversation
out of message id order. So the row shows the highest id as the latest, and a
copy counts as unread only when its id is above the read position.

Lock order: a transaction locks the inbox heads of the users it writes for
(lock_heads) before it changes their conversation rows, so two transactions
never wait for each other's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from switchboard.ids import GroupId, MessageId, Seq, UserId
from switchboard.store.base import (
    Conversation,
    ConversationKey,
    ConversationPage,
    InboxEntry,
)
from switchboard.store.postgres_conn import Connection, ConnectionSet
from switchboard.store.postgres_rows import (
    COPY_COLUMNS,
    OutgoingMessage,
    prefixed,
    stored_from_row,
)
from switchboard.store.shards import ShardMap

__all__ = [
    "COUNTED",
    "add_unread",
    "copy_filter",
    "count_unread",
    "join_conversations",
    "lock_heads",
    "select_conversation_page",
    "select_read_ids",
    "select_unread",
    "touch_conversations",
]

COUNTED: Final = (
    "i.change IS NULL AND NOT i.notice AND i.recalled_at IS NULL AND NOT i.deleted"
)
"""WHERE terms of an inbox copy ``i`` that can be unread: a message from a
user, neither recalled nor deleted. The caller adds that another user sent it."""


async def lock_heads(conn: Connection, users: Sequence[UserId]) -> None:
    """Lock the users' inbox head rows, in ascending user id order.

    The no-op update creates a missing head row at 0, so the lock holds for a
    user without entries too.
    """
    await conn.execute(
        "INSERT INTO inbox_heads (user_id, head_seq)"
        " SELECT u, 0 FROM unnest($1::bigint[]) AS u ORDER BY u"
        " ON CONFLICT (user_id) DO UPDATE SET head_seq = inbox_heads.head_seq",
        sorted(set(users)),
    )


async def touch_conversations(
    conn: Connection, message: OutgoingMessage, seqs: Mapping[UserId, Seq]
) -> dict[UserId, int]:
    """Add a new copy to each owner's conversation; return the unread counts.

    ``seqs`` gives the copy's sequence in each owner's inbox. The owners' head
    rows must be locked.
    """
    users = sorted(seqs)
    keys = [message.key_of(user) for user in users]
    rows = await conn.fetch(
        "INSERT INTO conversations AS c (user_id, peer, group_id, joined_id,"
        " end_id, last_id, last_seq, read_id, unread)"
        " SELECT t.user_id, t.peer, t.group_id, 0, $5, $5, t.seq, 0,"
        " t.counts::integer"
        " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
        " $6::boolean[]) AS t(user_id, peer, group_id, seq, counts)"
        " ORDER BY t.user_id"
        " ON CONFLICT (user_id, peer, group_id) DO UPDATE SET"
        " end_id = greatest(c.end_id, excluded.end_id),"
        " last_seq = CASE WHEN excluded.last_id > c.last_id"
        " THEN excluded.last_seq ELSE c.last_seq END,"
        " last_id = greatest(c.last_id, excluded.last_id),"
        " unread = c.unread + CASE WHEN excluded.last_id > c.read_id"
        " THEN excluded.unread ELSE 0 END"
        " RETURNING user_id, unread",
        users,
        [key.peer for key in keys],
        [key.group for key in keys],
        [seqs[user] for user in users],
        message.id,
        [message.counts_for(user) for user in users],
    )
    return {UserId(row["user_id"]): row["unread"] for row in rows}


async def join_conversations(
    conn: Connection, group_id: GroupId, joined: Mapping[UserId, MessageId]
) -> None:
    """Start the read positions of users who joined the group.

    ``joined`` maps each user to the group's highest message id when the
    user joined. A user whose row has that joined_id already is left as is.
    Otherwise the read position moves up to it, because older group messages
    are not in the inbox of a user who was not a member, and the unread count
    is counted again. The users' head rows must be locked.
    """
    users = sorted(joined)
    await conn.execute(
        "INSERT INTO conversations AS c (user_id, peer, group_id, joined_id,"
        " end_id, last_id, last_seq, read_id, unread)"
        " SELECT t.user_id, 0, $1, t.joined, 0, 0, 0, t.joined, 0"
        " FROM unnest($2::bigint[], $3::bigint[]) AS t(user_id, joined)"
        " ORDER BY t.user_id"
        " ON CONFLICT (user_id, peer, group_id) DO UPDATE SET"
        " joined_id = excluded.joined_id,"
        " read_id = greatest(c.read_id, excluded.joined_id),"
        " unread = (SELECT count(*) FROM inbox AS i"
        " WHERE i.user_id = c.user_id AND i.group_id = c.group_id"
        " AND i.message_id > greatest(c.read_id, excluded.joined_id)"
        f" AND {COUNTED} AND i.sender <> c.user_id)"
        " WHERE c.joined_id <> excluded.joined_id",
        group_id,
        users,
        [joined[user] for user in users],
    )


def copy_filter(key: ConversationKey, param: int) -> tuple[str, int]:
    """Return the WHERE term that selects a conversation's inbox copies ``i``,
    with its one parameter numbered ``param``, and that parameter's value."""
    if key.group:
        return f"i.group_id = ${param}", key.group
    return f"i.peer = ${param}", key.peer


async def count_unread(
    conn: Connection, user_id: UserId, key: ConversationKey, after_id: MessageId
) -> int:
    """Count the unread copies of the conversation with ids above ``after_id``."""
    where, value = copy_filter(key, 3)
    count: int = await conn.fetchval(
        "SELECT count(*) FROM inbox AS i WHERE i.user_id = $1"
        f" AND i.message_id > $2 AND {where} AND {COUNTED} AND i.sender <> $1",
        user_id,
        after_id,
        value,
    )
    return count


async def select_unread(conn: Connection, user_id: UserId, key: ConversationKey) -> int:
    """Return the user's unread count of the conversation; 0 without a row."""
    unread = await conn.fetchval(
        "SELECT unread FROM conversations"
        " WHERE user_id = $1 AND peer = $2 AND group_id = $3",
        user_id,
        key.peer,
        key.group,
    )
    return 0 if unread is None else int(unread)


async def add_unread(
    conn: Connection, user_id: UserId, key: ConversationKey, delta: int
) -> int:
    """Add ``delta`` to the user's unread count of the conversation; return it."""
    unread = await conn.fetchval(
        "UPDATE conversations SET unread = unread + $4"
        " WHERE user_id = $1 AND peer = $2 AND group_id = $3 RETURNING unread",
        user_id,
        key.peer,
        key.group,
        delta,
    )
    return 0 if unread is None else int(unread)


async def select_read_ids(
    conn: Connection, group_id: GroupId, users: Sequence[UserId]
) -> dict[UserId, MessageId]:
    """Return the read positions in the group of those ``users`` with a row."""
    rows = await conn.fetch(
        "SELECT user_id, read_id FROM conversations"
        " WHERE user_id = ANY($1::bigint[]) AND peer = 0 AND group_id = $2",
        list(users),
        group_id,
    )
    return {UserId(row["user_id"]): MessageId(row["read_id"]) for row in rows}


# The conversation list.


@dataclass(frozen=True, slots=True)
class _OwnRows:
    """What the list reads from the user's own database, in one snapshot."""

    rows: list[asyncpg.Record]
    head_seq: Seq
    total_unread: int


async def select_conversation_page(
    conns: ConnectionSet,
    shard_map: ShardMap,
    user_id: UserId,
    below: int,
    limit: int,
) -> ConversationPage:
    """Return the user's conversations whose latest message id is below ``below``.

    The rows come from one snapshot of the user's database. The names and the
    peers' read positions come from the other databases afterwards.
    """
    own = await _select_own_rows(
        await conns.get(shard_map.database_of(user_id)), user_id, below, limit
    )
    page = own.rows[:limit]
    peers = [UserId(r["conversation_peer"]) for r in page if r["conversation_peer"]]
    groups = [GroupId(r["conversation_group"]) for r in page if r["conversation_group"]]

    # The connections of the lookups are acquired in ascending database order.
    await conns.release()
    await conns.get_many(
        [0]
        + [shard_map.database_of(peer) for peer in peers]
        + [shard_map.database_of(group) for group in groups]
    )
    user_names = await _select_user_names(await conns.get(0), peers)
    group_names = await _select_group_names(conns, shard_map, groups)
    peer_reads = await _select_peer_read_ids(conns, shard_map, user_id, peers)

    conversations = []
    for row in page:
        group = GroupId(row["conversation_group"])
        peer = UserId(row["conversation_peer"])
        name = group_names.get(group, "") if group else user_names.get(peer, "")
        conversations.append(
            Conversation(
                key=ConversationKey(peer=peer, group=group),
                name=name,
                last=InboxEntry(
                    Seq(row["last_seq"]), stored_from_row(row), row["unread"]
                ),
                unread=row["unread"],
                read_id=MessageId(row["read_id"]),
                peer_read_id=peer_reads.get(peer, MessageId(0)),
            )
        )
    return ConversationPage(
        conversations=conversations,
        has_more=len(own.rows) > limit,
        head_seq=own.head_seq,
        total_unread=own.total_unread,
    )


async def _select_own_rows(
    conn: Connection, user_id: UserId, below: int, limit: int
) -> _OwnRows:
    # One row more than the limit shows whether more conversations follow.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            "SELECT c.peer AS conversation_peer, c.group_id AS conversation_group,"
            f" c.last_seq, c.unread, c.read_id, {prefixed(COPY_COLUMNS, 'i')}"
            " FROM conversations AS c JOIN inbox AS i"
            " ON i.user_id = c.user_id AND i.message_id = c.last_id"
            " WHERE c.user_id = $1 AND c.last_id > 0 AND c.last_id < $2"
            " ORDER BY c.last_id DESC LIMIT $3",
            user_id,
            below,
            limit + 1,
        )
        head = await conn.fetchval(
            "SELECT head_seq FROM inbox_heads WHERE user_id = $1", user_id
        )
        total = await conn.fetchval(
            "SELECT coalesce(sum(unread), 0) FROM conversations WHERE user_id = $1",
            user_id,
        )
    return _OwnRows(rows, Seq(head or 0), int(total))


async def _select_user_names(
    conn: Connection, user_ids: Sequence[UserId]
) -> dict[UserId, str]:
    if not user_ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, name FROM users WHERE id = ANY($1::bigint[])", list(user_ids)
    )
    return {UserId(row["id"]): row["name"] for row in rows}


async def _select_group_names(
    conns: ConnectionSet, shard_map: ShardMap, group_ids: Sequence[GroupId]
) -> dict[GroupId, str]:
    names: dict[GroupId, str] = {}
    for database, groups in _by_database(shard_map, group_ids).items():
        rows = await (await conns.get(database)).fetch(
            "SELECT id, name FROM groups WHERE id = ANY($1::bigint[])", groups
        )
        names |= {GroupId(row["id"]): row["name"] for row in rows}
    return names


async def _select_peer_read_ids(
    conns: ConnectionSet, shard_map: ShardMap, user_id: UserId, peers: list[UserId]
) -> dict[UserId, MessageId]:
    """Return each peer's read position in the conversation with ``user_id``."""
    reads: dict[UserId, MessageId] = {}
    for database, users in _by_database(shard_map, peers).items():
        rows = await (await conns.get(database)).fetch(
            "SELECT user_id, read_id FROM conversations"
            " WHERE user_id = ANY($1::bigint[]) AND peer = $2 AND group_id = 0",
            users,
            user_id,
        )
        reads |= {UserId(row["user_id"]): MessageId(row["read_id"]) for row in rows}
    return reads


def _by_database(shard_map: ShardMap, keys: Sequence[int]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for key in keys:
        grouped.setdefault(shard_map.database_of(key), []).append(key)
    return grouped
