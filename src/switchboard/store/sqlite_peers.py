"""SQL of the SQLite store's conversation peers and last-seen times.

The functions run on a connection of :class:`~switchboard.store.sqlite.SqliteStore`
and take ids already checked to fit SQLite's 64-bit integers. The tables come
from schema version 4 (see migrations.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from switchboard.ids import UserId

__all__ = ["raise_last_seen", "select_last_seen", "select_peers_among"]

_IDS_PER_QUERY: Final = 500
"""Bound parameters per IN list, well below SQLite's limit of 32,766."""


def select_peers_among(
    conn: sqlite3.Connection, user_id: UserId, candidates: Sequence[UserId]
) -> set[UserId]:
    """Return the candidates who exchanged one-to-one messages with ``user_id``
    in both directions, or share a group with it."""
    peers: set[UserId] = set()
    unique = list(dict.fromkeys(candidates))
    for start in range(0, len(unique), _IDS_PER_QUERY):
        batch = unique[start : start + _IDS_PER_QUERY]
        placeholders = ", ".join("?" * len(batch))
        rows = conn.execute(
            "SELECT sent.peer_id FROM contacts AS sent"
            " JOIN contacts AS received"
            " ON received.user_id = sent.peer_id AND received.peer_id = sent.user_id"
            f" WHERE sent.user_id = ? AND sent.peer_id IN ({placeholders})"
            " UNION"
            " SELECT other.user_id FROM group_members AS mine"
            " JOIN group_members AS other ON other.group_id = mine.group_id"
            f" WHERE mine.user_id = ? AND other.user_id IN ({placeholders})",
            (user_id, *batch, user_id, *batch),
        ).fetchall()
        peers.update(UserId(row[0]) for row in rows)
    peers.discard(user_id)
    return peers


def raise_last_seen(conn: sqlite3.Connection, user_id: UserId, seen_at: int) -> None:
    conn.execute(
        "INSERT INTO last_seen (user_id, seen_at) VALUES (?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)",
        (user_id, seen_at),
    )


def select_last_seen(
    conn: sqlite3.Connection, user_ids: Sequence[UserId]
) -> dict[UserId, int]:
    seen: dict[UserId, int] = {}
    unique = list(dict.fromkeys(user_ids))
    for start in range(0, len(unique), _IDS_PER_QUERY):
        batch = unique[start : start + _IDS_PER_QUERY]
        placeholders = ", ".join("?" * len(batch))
        rows = conn.execute(
            f"SELECT user_id, seen_at FROM last_seen WHERE user_id IN ({placeholders})",
            batch,
        ).fetchall()
        seen.update((UserId(row[0]), row[1]) for row in rows)
    return seen
