"""SQL of the SQLite store's lookups in one user's inbox.

The functions run on a connection of :class:`~switchboard.store.sqlite.SqliteStore`
and take ids already checked to fit SQLite's 64-bit integers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from switchboard.ids import MessageId, Seq, UserId

__all__ = ["select_bodies_containing", "select_inbox_seqs"]

_IDS_PER_QUERY: Final = 500
"""Bound parameters per IN list, well below SQLite's limit of 32,766."""


def select_inbox_seqs(
    conn: sqlite3.Connection, user_id: UserId, message_ids: Sequence[MessageId]
) -> dict[MessageId, Seq]:
    """Return {message id: seq} for the messages in the user's inbox."""
    unique = list(dict.fromkeys(message_ids))
    seqs: dict[MessageId, Seq] = {}
    for start in range(0, len(unique), _IDS_PER_QUERY):
        batch = unique[start : start + _IDS_PER_QUERY]
        placeholders = ", ".join("?" * len(batch))
        rows = conn.execute(
            "SELECT message_id, seq FROM inbox"
            f" WHERE user_id = ? AND message_id IN ({placeholders})",
            (user_id, *batch),
        ).fetchall()
        seqs.update((MessageId(row[0]), Seq(row[1])) for row in rows)
    return seqs


def select_bodies_containing(
    conn: sqlite3.Connection,
    user_id: UserId,
    content_type: int,
    needle: bytes,
    limit: int,
) -> list[tuple[UserId, bytes]]:
    """Return (sender, body) of the user's messages of ``content_type`` whose
    body contains ``needle``."""
    # NOTE: scans the user's whole inbox; index the bodies if this gets slow.
    rows = conn.execute(
        "SELECT messages.sender, messages.body FROM inbox"
        " JOIN messages ON messages.id = inbox.message_id"
        " WHERE inbox.user_id = ? AND messages.content_type = ?"
        " AND instr(messages.body, ?) > 0 LIMIT ?",
        (user_id, content_type, needle, limit),
    ).fetchall()
    return [(UserId(row[0]), bytes(row[1])) for row in rows]
