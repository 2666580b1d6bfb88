"""SQL of the SQLite store's full-text search (FTS5, schema version 5).

Each term becomes an FTS5 prefix phrase: ``"term"*``, with double quotes
doubled, so no text a user types can change the query's syntax. Phrases
side by side must all match. Matches are read newest first through the FTS5
rowid, which is the message id, and joined with the searching user's inbox,
so another inbox's messages never appear.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from switchboard.ids import GroupId, MessageId, Seq, UserId

__all__ = ["Matches", "Search", "match_expression", "select_matches"]


@dataclass(frozen=True, slots=True)
class Search:
    """Arguments of one search_messages call, already range-checked."""

    user_id: UserId
    terms: tuple[str, ...]
    before_id: MessageId | None
    limit: int
    peer_id: UserId | None
    group_id: GroupId | None


@dataclass(frozen=True, slots=True)
class Matches:
    rows: list[tuple[Seq, tuple[Any, ...]]]
    """(seq in the user's inbox, the message columns), newest first."""
    has_more: bool


def match_expression(terms: Sequence[str]) -> str:
    """Return the FTS5 query that matches words starting with every term."""
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


def select_matches(
    conn: sqlite3.Connection, search: Search, message_columns: str
) -> Matches:
    """Run ``search``; ``message_columns`` selects the message from ``m``."""
    filters = ""
    params: list[Any] = [search.user_id, match_expression(search.terms)]
    if search.before_id is not None:
        filters += " AND s.rowid < ?"
        params.append(search.before_id)
    if search.peer_id is not None:
        low, high = sorted((search.user_id, search.peer_id))
        filters += " AND m.conv_lo = ? AND m.conv_hi = ?"
        params += [low, high]
    if search.group_id is not None:
        filters += " AND m.group_id = ?"
        params.append(search.group_id)
    # Messages the user deleted for themselves are left out.
    filters += (
        " AND NOT EXISTS (SELECT 1 FROM deleted_messages AS d"
        " WHERE d.user_id = ? AND d.message_id = s.rowid)"
    )
    params.append(search.user_id)
    params.append(search.limit + 1)

    # NOTE: FTS5 returns the matches of every inbox, newest first, and the
    # join drops other users' ones. A word common elsewhere but rare in
    # this inbox makes the scan long; a per-user index would avoid that.
    rows = conn.execute(
        f"SELECT i.seq, {message_columns} FROM message_search AS s"
        " JOIN inbox AS i ON i.user_id = ? AND i.message_id = s.rowid"
        " JOIN messages AS m ON m.id = s.rowid"
        f" WHERE message_search MATCH ?{filters}"
        " ORDER BY s.rowid DESC LIMIT ?",
        params,
    ).fetchall()
    found = [(Seq(row[0]), tuple(row[1:])) for row in rows[: search.limit]]
    return Matches(found, len(rows) > search.limit)
