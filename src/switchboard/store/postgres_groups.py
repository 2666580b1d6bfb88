"""SQL for groups in the PostgreSQL store, run in the group's database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from switchboard.ids import GroupId, MessageId, UserId
from switchboard.store.base import Group, GroupNotFound, Member, Role, StoredMessage
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_inbox import OutgoingMessage

__all__ = [
    "delete_member",
    "insert_group",
    "insert_group_message",
    "insert_members",
    "lock_group",
    "rename_group",
    "require_group",
    "select_group",
    "select_group_page",
    "select_groups_of",
    "select_member_ids",
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


async def select_member_ids(conn: Connection, group_id: GroupId) -> list[UserId]:
    rows = await conn.fetch(
        "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id",
        group_id,
    )
    return [UserId(row["user_id"]) for row in rows]


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
) -> None:
    await conn.executemany(
        "INSERT INTO group_members (group_id, user_id, role, joined_at)"
        " VALUES ($1, $2, $3, $4)",
        [(group_id, user_id, role.value, now) for user_id, role in members],
    )


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
        " body, sent_at, mentions) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (group_id, message_id) DO NOTHING",
        group_id,
        message.id,
        message.sender,
        message.content_type,
        message.body,
        message.sent_at,
        list(message.mentions) if message.mentions else None,
    )


async def select_group_page(
    conn: Connection,
    group_id: GroupId,
    before_id: MessageId | None,
    limit: int,
) -> tuple[list[StoredMessage], bool]:
    columns = "message_id, sender, content_type, body, sent_at, mentions"
    if before_id is None:
        rows = await conn.fetch(
            f"SELECT {columns} FROM group_messages WHERE group_id = $1"
            " ORDER BY message_id DESC LIMIT $2",
            group_id,
            limit + 1,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {columns} FROM group_messages WHERE group_id = $1"
            " AND message_id < $2 ORDER BY message_id DESC LIMIT $3",
            group_id,
            before_id,
            limit + 1,
        )

    messages = [
        StoredMessage(
            id=MessageId(row["message_id"]),
            sender=UserId(row["sender"]),
            recipient=UserId(0),
            content_type=row["content_type"],
            body=row["body"],
            sent_at=row["sent_at"],
            group_id=group_id,
            mentions=tuple(UserId(u) for u in row["mentions"] or ()),
        )
        for row in rows[:limit]
    ]
    return messages, len(rows) > limit
