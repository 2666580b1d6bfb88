"""Schema migrations for the SQLite store.

``MIGRATIONS[i]`` upgrades a database from schema version ``i`` to ``i + 1``.
The version is kept in ``PRAGMA user_version``, which is 0 in a new file.
Append new migrations at the end and never edit one that has been released,
because databases already past it will not run it again.

Each migration is a sequence of single SQL statements rather than one script,
because ``sqlite3.Connection.executescript`` commits any open transaction
first (Python 3.11), which would break the single upgrade transaction.
"""

from __future__ import annotations

import logging
import sqlite3

from switchboard.store.base import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

logger = logging.getLogger("switchboard.store")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # Version 1: accounts, sessions, devices, messages and inboxes.
    (
        """
        CREATE TABLE users (
            id            INTEGER PRIMARY KEY,
            name          TEXT    NOT NULL UNIQUE,
            password_hash TEXT    NOT NULL,
            created_at    INTEGER NOT NULL
        )
        """,
        """
        CREATE TABLE sessions (
            token_hash BLOB    PRIMARY KEY,
            user_id    INTEGER NOT NULL REFERENCES users (id),
            device     TEXT    NOT NULL,
            platform   INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE devices (
            user_id        INTEGER NOT NULL REFERENCES users (id),
            device         TEXT    NOT NULL,
            cursor         INTEGER NOT NULL,
            last_client_id INTEGER NOT NULL,
            PRIMARY KEY (user_id, device)
        ) WITHOUT ROWID
        """,
        # sender_seq and recipient_seq repeat the message's inbox positions, so
        # that a resent message finds both in the row that the UNIQUE index
        # returns, without an index on inbox.message_id.
        """
        CREATE TABLE messages (
            id            INTEGER PRIMARY KEY,
            sender        INTEGER NOT NULL REFERENCES users (id),
            sender_device TEXT    NOT NULL,
            client_id     INTEGER NOT NULL,
            recipient     INTEGER NOT NULL REFERENCES users (id),
            conv_lo       INTEGER NOT NULL,
            conv_hi       INTEGER NOT NULL,
            content_type  INTEGER NOT NULL,
            body          BLOB    NOT NULL,
            sent_at       INTEGER NOT NULL,
            sender_seq    INTEGER NOT NULL,
            recipient_seq INTEGER NOT NULL,
            UNIQUE (sender, sender_device, client_id)
        )
        """,
        """
        CREATE INDEX messages_conversation ON messages (conv_lo, conv_hi, id)
        """,
        """
        CREATE TABLE inbox (
            user_id    INTEGER NOT NULL REFERENCES users (id),
            seq        INTEGER NOT NULL,
            message_id INTEGER NOT NULL REFERENCES messages (id),
            PRIMARY KEY (user_id, seq)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE inbox_heads (
            user_id  INTEGER PRIMARY KEY REFERENCES users (id),
            head_seq INTEGER NOT NULL
        )
        """,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""Schema version of a fully migrated database."""


def migrate(conn: sqlite3.Connection) -> tuple[int, int]:
    """Apply pending migrations in one transaction; return (old, new) version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) with no
    open transaction. ``BEGIN IMMEDIATE`` takes the write lock before the
    version is read, so two processes opening one file cannot both upgrade
    it. Raises StoreError when the file's version is above SCHEMA_VERSION,
    and sqlite3.Error when a statement fails, after rolling back.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        old_version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if old_version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {old_version} is newer than the "
                f"latest version this Switchboard supports ({SCHEMA_VERSION}); "
                "upgrade Switchboard"
            )

        for version in range(old_version, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)

        # PRAGMA does not accept bound parameters, and the value is an int.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        # SQLite rolls back by itself after some errors (SQLITE_FULL, I/O).
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise

    if old_version < SCHEMA_VERSION:
        logger.info("applied schema migrations %d -> %d", old_version, SCHEMA_VERSION)
    return old_version, SCHEMA_VERSION
