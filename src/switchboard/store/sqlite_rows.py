"""SQL helpers shared by the modules of the SQLite store.

The column list and row parser of messages, the inbox sequence counter, and
the transaction helpers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from typing import Any, Final

from switchboard.ids import GroupId, MessageId, Seq, UserId
from switchboard.store.base import StoredMessage

__all__ = [
    "MESSAGE_COLUMNS",
    "MESSAGE_COLUMN_COUNT",
    "message_from_row",
    "next_seq",
    "read_transaction",
    "rollback",
]

logger = logging.getLogger("switchboard.store")

MESSAGE_COLUMNS: Final = (
    "m.id, m.sender, m.recipient, m.content_type, m.body, m.sent_at,"
    " m.group_id, m.mentions, m.change, m.target, m.edited_at, m.recalled_at"
)


MESSAGE_COLUMN_COUNT: Final = 12


def message_from_row(row: tuple[Any, ...], start: int = 0) -> StoredMessage:
    """Build a message from the MESSAGE_COLUMNS found at ``row[start:]``."""
    recipient = row[start + 2]
    group_id = row[start + 6]
    mentions = row[start + 7]
    change = row[start + 8]
    target = row[start + 9]
    edited_at = row[start + 10]
    recalled_at = row[start + 11]
    return StoredMessage(
        id=MessageId(row[start]),
        sender=UserId(row[start + 1]),
        recipient=UserId(0 if recipient is None else recipient),
        content_type=row[start + 3],
        body=row[start + 4],
        sent_at=row[start + 5],
        group_id=None if group_id is None else GroupId(group_id),
        mentions=() if mentions is None else _decode_mentions(mentions),
        change=0 if change is None else change,
        target=MessageId(0 if target is None else target),
        edited_at=0 if edited_at is None else edited_at,
        recalled_at=0 if recalled_at is None else recalled_at,
    )


def _decode_mentions(text: str) -> tuple[UserId, ...]:
    return tuple(UserId(user_id) for user_id in json.loads(text))


def next_seq(conn: sqlite3.Connection, user_id: UserId) -> Seq:
    """Advance the user's inbox head by one and return the new head."""
    row = conn.execute(
        "INSERT INTO inbox_heads (user_id, head_seq) VALUES (?, 1)"
        " ON CONFLICT (user_id) DO UPDATE SET head_seq = head_seq + 1"
        " RETURNING head_seq",
        (user_id,),
    ).fetchone()
    return Seq(row[0])


@contextlib.contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Make the enclosed SELECTs read one snapshot of the database."""
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        rollback(conn)
        raise
    conn.execute("COMMIT")


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        logger.exception("ROLLBACK failed")
