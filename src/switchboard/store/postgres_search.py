"""SQL of the PostgreSQL store's full-text search (schema version 3).

Each inbox copy of a text message carries a tsvector of its words, kept by
a trigger, and the SQL function ``search_query`` turns the terms into a
tsquery (see postgres_schema.py). Both fold case, diacritics and ASCII
punctuation the same way. Only the searching user's inbox is read, so
another inbox's messages never appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard.ids import GroupId, MessageId, Seq, UserId
from switchboard.store.base import InboxEntry
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_rows import COPY_COLUMNS, stored_from_row

__all__ = ["Search", "select_matches"]


@dataclass(frozen=True, slots=True)
class Search:
    """Arguments of one search_messages call, already range-checked."""

    user_id: UserId
    terms: tuple[str, ...]
    before_id: MessageId | None
    limit: int
    peer_id: UserId | None
    group_id: GroupId | None


async def select_matches(
    conn: Connection, search: Search
) -> tuple[list[InboxEntry], bool]:
    """Run ``search`` on the database of the searching user; return the
    entries newest first and whether more match.

    Messages the user deleted for themselves are left out.
    """
    # PostgreSQL text cannot contain NUL, which is no letter or digit and so
    # separates words anyway.
    terms = [term.replace("\x00", " ") for term in search.terms]
    params: list[Any] = [search.user_id, terms]
    filters = ""
    if search.before_id is not None:
        params.append(search.before_id)
        filters += f" AND message_id < ${len(params)}"
    if search.peer_id is not None:
        params.append(search.peer_id)
        filters += f" AND peer = ${len(params)}"
    if search.group_id is not None:
        params.append(search.group_id)
        filters += f" AND group_id = ${len(params)}"
    params.append(search.limit + 1)

    # NOTE: the GIN index finds the matches of every inbox in this database
    # and the user_id condition drops the others, unless the planner walks
    # the user's inbox backwards instead. A word common elsewhere but rare
    # in this inbox makes the first plan slow; a per-user index would not.
    rows = await conn.fetch(
        f"SELECT seq, {COPY_COLUMNS} FROM inbox"
        " WHERE user_id = $1 AND search @@ search_query($2::text[]) AND NOT deleted"
        f"{filters} ORDER BY message_id DESC LIMIT ${len(params)}",
        *params,
    )
    entries = [
        InboxEntry(Seq(row["seq"]), stored_from_row(row))
        for row in rows[: search.limit]
    ]
    return entries, len(rows) > search.limit
