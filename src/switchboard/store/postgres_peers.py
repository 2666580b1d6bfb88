"""SQL of the PostgreSQL store's conversation peers and last-seen times.

The tables come from schema version 3 (see postgres_schema.py). A user's
contacts and last-seen time are kept in the user's database, and group
memberships in the group's database.
"""

from __future__ import annotations

from collections.abc import Sequence

from switchboard.ids import UserId
from switchboard.store.postgres_conn import Connection

__all__ = [
    "raise_last_seen",
    "select_group_peers",
    "select_last_seen",
    "select_mutual_contacts",
]


async def select_mutual_contacts(
    conn: Connection, user_id: UserId, candidates: Sequence[UserId]
) -> set[UserId]:
    """Return the candidates who exchanged one-to-one messages with ``user_id``
    in both directions; ``conn`` is on the database of ``user_id``."""
    rows = await conn.fetch(
        "SELECT peer_id FROM contacts"
        " WHERE user_id = $1 AND peer_id = ANY($2::bigint[]) AND sent AND received",
        user_id,
        candidates,
    )
    return {UserId(row["peer_id"]) for row in rows}


async def select_group_peers(
    conn: Connection, user_id: UserId, candidates: Sequence[UserId]
) -> set[UserId]:
    """Return the candidates who share a group of this database with
    ``user_id``, ``user_id`` itself included if it is a candidate."""
    rows = await conn.fetch(
        "SELECT DISTINCT other.user_id FROM group_members AS mine"
        " JOIN group_members AS other ON other.group_id = mine.group_id"
        " WHERE mine.user_id = $1 AND other.user_id = ANY($2::bigint[])",
        user_id,
        candidates,
    )
    return {UserId(row["user_id"]) for row in rows}


async def raise_last_seen(conn: Connection, user_id: UserId, seen_at: int) -> None:
    await conn.execute(
        "INSERT INTO last_seen (user_id, seen_at) VALUES ($1, $2)"
        " ON CONFLICT (user_id) DO UPDATE SET seen_at = excluded.seen_at"
        " WHERE last_seen.seen_at < excluded.seen_at",
        user_id,
        seen_at,
    )


async def select_last_seen(
    conn: Connection, user_ids: Sequence[UserId]
) -> dict[UserId, int]:
    rows = await conn.fetch(
        "SELECT user_id, seen_at FROM last_seen WHERE user_id = ANY($1::bigint[])",
        user_ids,
    )
    return {UserId(row["user_id"]): row["seen_at"] for row in rows}
