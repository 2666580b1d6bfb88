"""SQL for groups in the PostgreSQL store, run in the group's database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import asyncpg

from switchboard.ids import GroupId, MessageId, UserId
from switchboard.store.base import Group, GroupNotFound, Member, Role, StoredMessage
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_rows import OutgoingMessage

__all__ = [
    "delete_member",
    "insert_group",
    "insert_group_message",
    "insert_members",
    "lock_group",
    "rename_group",
    "require_group",
    "select_group",
    "select_group_history",
    "select_group_page",
    "select_group_read_state",
    "select_groups_of",
    "select_member_joins",
    "select_members",
    "unlock_group",
    "update_role",
]

_GROUP_COLUMNS: Final = "id, name, created_by, created_at, mode"


def _group_from_row(row: asyncpg.Record) -> Group:
    return Group(
        id=GroupId(row["id"]),
        name=row["name"],
        created_by=UserId(row["created_by"]),
        created_at=row["created_at"],
        mode=row["mode"],
    )


async def lock_group(conn: Connection, group_id: GroupId) -> None:
    """Take the group's session-level advisory lock, waiting for it if needed.

    Every membership change and every group message holds this lock from
    reading the membership until all copies are written, in every database,
    so all members see the group's messages and changes in one order.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", group_id)


async def unlock_group(conn: Connection, group_id: GroupId) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", group_id)


async def select_group(conn: Connection, group_id: GroupId) -> Group | None:
    row = await conn.fetchrow(
        f"SELECT {_GROUP_COLUMNS} FROM groups WHERE id = $1", group_id
    )
    return None if row is None else _group_from_row(row)


async def require_group(conn: Connection, group_id: GroupId) -> Group:
    group = await select_group(conn, group_id)
    if group is None:
        raise GroupNotFound(f"no group with id {group_id}")
    return group


async def select_members(conn: Connection, group_id: GroupId) -> list[Member]:
    rows = await conn.fetch(
        "SELECT user_id, role, joined_at FROM group_members"
        " WHERE group_id = $1 ORDER BY user_id",
        group_id,
    )
    return [
        Member(
            user_id=UserId(row["user_id"]),
            role=Role(row["role"]),
            joined_at=row["joined_at"],
        )
        for row in rows
    ]


async def select_member_joins(
    conn: Connection, group_id: GroupId
) -> dict[UserId, MessageId]:
    """Return each member's joined_id (the group's highest message id when the
    member joined), ordered by user id."""
    rows = await conn.fetch(
        "SELECT user_id, joined_id FROM group_members WHERE group_id = $1"
        " ORDER BY user_id",
        group_id,
    )
    return {UserId(row["user_id"]): MessageId(row["joined_id"]) for row in rows}


async def select_groups_of(conn: Connection, user_id: UserId) -> list[Group]:
    """Return the groups in this database that the user is a member of."""
    rows = await conn.fetch(
        "SELECT g.id, g.name, g.created_by, g.created_at, g.mode"
        " FROM group_members AS gm JOIN groups AS g ON g.id = gm.group_id"
        " WHERE gm.user_id = $1 ORDER BY g.id",
        user_id,
    )
    return [_group_from_row(row) for row in rows]


async def insert_group(
    conn: Connection, group_id: GroupId, name: str, creator: UserId, now: int
) -> Group:
    row = await conn.fetchrow(
        "INSERT INTO groups (id, name, created_by, created_at) VALUES ($1, $2, $3, $4)"
        f" RETURNING {_GROUP_COLUMNS}",
        group_id,
        name,
        creator,
        now,
    )
    assert row is not None, "INSERT ... RETURNING returned no row"
    return _group_from_row(row)


async def insert_members(
    conn: Connection,
    group_id: GroupId,
    members: Sequence[tuple[UserId, Role]],
    now: int,
) -> MessageId:
    """Add members; return their joined_id, the group's highest message id.

    Messages up to that id were sent before they joined.
    """
    # NOTE: a group message whose history copy still waits in an outbox (its
    # relay failed) is missing here, so read counts take members who join
    # before the relay for members of that message.
    joined = MessageId(
        await conn.fetchval(
            "SELECT coalesce(max(message_id), 0) FROM group_messages"
            " WHERE group_id = $1",
            group_id,
        )
    )
    await conn.executemany(
        "INSERT INTO group_members (group_id, user_id, role, joined_at, joined_id)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(group_id, user_id, role.value, now, joined) for user_id, role in members],
    )
    return joined


async def delete_member(conn: Connection, group_id: GroupId, user_id: UserId) -> None:
    await conn.execute(
        "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
        group_id,
        user_id,
    )


async def update_role(
    conn: Connection, group_id: GroupId, user_id: UserId, role: Role
) -> bool:
    """Set a member's role; return False when the user is not a member."""
    updated = await conn.fetchval(
        "UPDATE group_members SET role = $3 WHERE group_id = $1 AND user_id = $2"
        " RETURNING user_id",
        group_id,
        user_id,
        role.value,
    )
    return updated is not None


async def rename_group(conn: Connection, group_id: GroupId, name: str) -> Group:
    row = await conn.fetchrow(
        f"UPDATE groups SET name = $2 WHERE id = $1 RETURNING {_GROUP_COLUMNS}",
        group_id,
        name,
    )
    if row is None:
        raise GroupNotFound(f"no group with id {group_id}")
    return _group_from_row(row)


async def insert_group_message(
    conn: Connection, group_id: GroupId, message: OutgoingMessage
) -> None:
    """Add the message to the group's history; a repeated relay adds nothing."""
    await conn.execute(
        "INSERT INTO group_messages (group_id, message_id, sender, content_type,"
        " body, sent_at, mentions, notice) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (group_id, message_id) DO NOTHING",
        group_id,
        message.id,
        message.sender,
        message.content_type,
        message.body,
        message.sent_at,
        list(message.mentions) if message.mentions else None,
        message.notice,
    )


async def select_group_page(
    conn: Connection,
    group_id: GroupId,
    before_id: MessageId | None,
    limit: int,
) -> list[StoredMessage]:
    """Return up to ``limit`` messages of the group with ids below ``before_id``
    (all when None), newest first."""
    columns = (
        "message_id, sender, content_type, body, sent_at, mentions,"
        " edited_at, recalled_at"
    )
    if before_id is None:
        id_filter = ""
        params: tuple[int, ...] = (group_id, limit)
    else:
        id_filter = " AND message_id < $3"
        params = (group_id, limit, before_id)
    rows = await conn.fetch(
        f"SELECT {columns} FROM group_messages WHERE group_id = $1{id_filter}"
        " AND change IS NULL ORDER BY message_id DESC LIMIT $2",
        *params,
    )

    return [
        StoredMessage(
            id=MessageId(row["message_id"]),
            sender=UserId(row["sender"]),
            recipient=UserId(0),
            content_type=row["content_type"],
            body=row["body"],
            sent_at=row["sent_at"],
            group_id=group_id,
            mentions=tuple(UserId(u) for u in row["mentions"] or ()),
            edited_at=row["edited_at"] or 0,
            recalled_at=row["recalled_at"] or 0,
        )
        for row in rows
    ]


async def select_group_history(
    conn: Connection,
    group_id: GroupId,
    before_id: MessageId | None,
    limit: int,
    hidden: Callable[[list[MessageId]], Awaitable[set[MessageId]]] | None,
) -> tuple[list[StoredMessage], bool]:
    """Page backwards through the group's history, leaving out the ids that
    ``hidden`` returns for each batch; return the page and whether older
    messages remain. ``limit`` must be below the bigint maximum."""
    kept: list[StoredMessage] = []
    cursor = before_id
    # One message more than the limit shows whether older ones remain.
    while len(kept) <= limit:
        batch = await select_group_page(conn, group_id, cursor, limit + 1)
        left_out = set() if hidden is None else await hidden([m.id for m in batch])
        kept += [message for message in batch if message.id not in left_out]
        if len(batch) <= limit:
            break
        cursor = batch[-1].id
    return kept[:limit], len(kept) > limit


async def select_group_read_state(
    conn: Connection, group_id: GroupId, message_ids: Sequence[MessageId]
) -> tuple[dict[UserId, MessageId], dict[MessageId, UserId]]:
    """Return the members' joined ids and the senders of those of
    ``message_ids`` that users sent to the group (not notices)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        members = await select_member_joins(conn, group_id)
        rows = await conn.fetch(
            "SELECT message_id, sender FROM group_messages WHERE group_id = $1"
            " AND message_id = ANY($2::bigint[]) AND NOT notice AND change IS NULL",
            group_id,
            list(message_ids),
        )
    senders = {MessageId(row["message_id"]): UserId(row["sender"]) for row in rows}
    return members, senders
