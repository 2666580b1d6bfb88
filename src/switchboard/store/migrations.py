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
    # Version 2: groups with fan-out on write. SQLite's ALTER TABLE cannot
    # drop NOT NULL from a column, so messages is rebuilt (create a copy,
    # copy the rows, drop, rename) to let a group message have no recipient.
    (
        # mode 'write' copies each group message into every member's inbox.
        # Large groups will need a group timeline read by members (fan-out on
        # read), which gets a mode of its own.
        """
        CREATE TABLE groups (
            id         INTEGER PRIMARY KEY,
            name       TEXT    NOT NULL,
            created_by INTEGER NOT NULL REFERENCES users (id),
            created_at INTEGER NOT NULL,
            mode       TEXT    NOT NULL DEFAULT 'write' CHECK (mode IN ('write'))
        )
        """,
        """
        CREATE TABLE group_members (
            group_id  INTEGER NOT NULL REFERENCES groups (id),
            user_id   INTEGER NOT NULL REFERENCES users (id),
            role      TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            joined_at INTEGER NOT NULL,
            PRIMARY KEY (group_id, user_id)
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX group_members_by_user ON group_members (user_id, group_id)
        """,
        # A group message has group_id set and recipient, conv_lo, conv_hi and
        # recipient_seq NULL. A system notice of a group change has no
        # sender_device and client_id, so it never matches a resend.
        """
        CREATE TABLE messages_v2 (
            id            INTEGER PRIMARY KEY,
            sender        INTEGER NOT NULL REFERENCES users (id),
            sender_device TEXT,
            client_id     INTEGER,
            recipient     INTEGER REFERENCES users (id),
            group_id      INTEGER REFERENCES groups (id),
            conv_lo       INTEGER,
            conv_hi       INTEGER,
            content_type  INTEGER NOT NULL,
            body          BLOB    NOT NULL,
            sent_at       INTEGER NOT NULL,
            sender_seq    INTEGER NOT NULL,
            recipient_seq INTEGER,
            mentions      TEXT,
            UNIQUE (sender, sender_device, client_id),
            CHECK ((recipient IS NULL) = (group_id IS NOT NULL))
        )
        """,
        """
        INSERT INTO messages_v2 (id, sender, sender_device, client_id, recipient,
            conv_lo, conv_hi, content_type, body, sent_at, sender_seq, recipient_seq)
        SELECT id, sender, sender_device, client_id, recipient,
            conv_lo, conv_hi, content_type, body, sent_at, sender_seq, recipient_seq
        FROM messages
        """,
        "DROP TABLE messages",
        "ALTER TABLE messages_v2 RENAME TO messages",
        """
        CREATE INDEX messages_conversation ON messages (conv_lo, conv_hi, id)
        """,
        """
        CREATE INDEX messages_group ON messages (group_id, id)
        """,
    ),
    # Version 3: conversation lists with read positions and unread counts.
    (
        # One row per user and conversation: peer is the other user of a
        # one-to-one conversation (the user itself for notes to self) and
        # group_id is 0, or peer is 0 and group_id is the group. joined_id is
        # the group's highest message id when the user last joined: older
        # group messages are not in the user's inbox. end_id is the highest
        # message id of the conversation in the user's inbox, and last_id the
        # message shown as the latest (0: none) at inbox seq last_seq.
        """
        CREATE TABLE conversations (
            user_id   INTEGER NOT NULL REFERENCES users (id),
            peer      INTEGER NOT NULL,
            group_id  INTEGER NOT NULL,
            joined_id INTEGER NOT NULL,
            end_id    INTEGER NOT NULL,
            last_id   INTEGER NOT NULL,
            last_seq  INTEGER NOT NULL,
            read_id   INTEGER NOT NULL,
            unread    INTEGER NOT NULL,
            PRIMARY KEY (user_id, peer, group_id)
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX conversations_recent ON conversations (user_id, last_id)
        """,
        """
        CREATE INDEX conversations_group ON conversations (group_id, user_id)
        """,
        # The conversation's unread count for the inbox's owner once the entry
        # is applied; NULL (read as 0) for entries stored before version 3.
        "ALTER TABLE inbox ADD COLUMN unread INTEGER",
        # Messages stored before version 3 count as read.
        """
        INSERT INTO conversations (user_id, peer, group_id, joined_id, end_id,
            last_id, last_seq, read_id, unread)
        SELECT i.user_id,
            CASE WHEN m.group_id IS NULL THEN m.conv_lo + m.conv_hi - i.user_id
                ELSE 0 END,
            coalesce(m.group_id, 0), 0, max(m.id), max(m.id), max(i.seq),
            max(m.id), 0
        FROM inbox AS i JOIN messages AS m ON m.id = i.message_id
        GROUP BY 1, 2, 3
        """,
    ),
    # Version 4: change entries. A change (a read, for example) is stored as a
    # row of messages with change set to its kind and target to the message it
    # refers to, so that it gets inbox entries like a message. It has no
    # client_id, and history reads leave it out.
    (
        "ALTER TABLE messages ADD COLUMN change INTEGER",
        "ALTER TABLE messages ADD COLUMN target INTEGER REFERENCES messages (id)",
        """
        CREATE INDEX messages_target ON messages (target) WHERE target IS NOT NULL
        """,
    ),
    # Version 5: recalled and edited messages, and messages a user deleted
    # for themselves. A recall empties the body.
    (
        "ALTER TABLE messages ADD COLUMN edited_at INTEGER",
        "ALTER TABLE messages ADD COLUMN recalled_at INTEGER",
        """
        CREATE TABLE deleted_messages (
            user_id    INTEGER NOT NULL REFERENCES users (id),
            message_id INTEGER NOT NULL REFERENCES messages (id),
            PRIMARY KEY (user_id, message_id)
        ) WITHOUT ROWID
        """,
    ),
    # Version 6: find a message's entry in a user's inbox, for the sequence
    # numbers of history pages and for search. It adds one index entry per
    # inbox entry.
    (
        """
        CREATE INDEX inbox_by_message ON inbox (user_id, message_id)
        """,
    ),
    # Version 7: conversation peers and last-seen times, for typing and
    # presence. A contacts row (user_id, peer_id) means that user_id sent
    # peer_id a one-to-one message; two users who wrote to each other are
    # peers. A trigger keeps the table current, so no write path needs to.
    (
        """
        CREATE TABLE contacts (
            user_id INTEGER NOT NULL REFERENCES users (id),
            peer_id INTEGER NOT NULL REFERENCES users (id),
            PRIMARY KEY (user_id, peer_id)
        ) WITHOUT ROWID
        """,
        """
        INSERT OR IGNORE INTO contacts (user_id, peer_id)
        SELECT DISTINCT sender, recipient FROM messages
        WHERE recipient IS NOT NULL AND recipient != sender
        """,
        """
        CREATE TRIGGER contacts_after_message AFTER INSERT ON messages
        WHEN NEW.recipient IS NOT NULL AND NEW.recipient != NEW.sender
        BEGIN
            INSERT OR IGNORE INTO contacts (user_id, peer_id)
            VALUES (NEW.sender, NEW.recipient);
        END
        """,
        """
        CREATE TABLE last_seen (
            user_id INTEGER PRIMARY KEY REFERENCES users (id),
            seen_at INTEGER NOT NULL
        )
        """,
    ),
    # Version 8: full-text search of text messages (content type 0), change
    # entries left out. The
    # FTS5 row of a message has the message's id as its rowid. Triggers keep
    # it in step with every insert, delete and change of a message's body or
    # content type, so no write path needs to. unicode61 splits words at
    # spaces and punctuation and folds case and diacritics.
    (
        """
        CREATE VIRTUAL TABLE message_search USING fts5 (
            text, tokenize = 'unicode61 remove_diacritics 2'
        )
        """,
        """
        INSERT INTO message_search (rowid, text)
        SELECT id, CAST(body AS TEXT) FROM messages
        WHERE content_type = 0 AND change IS NULL
        """,
        """
        CREATE TRIGGER message_search_after_insert AFTER INSERT ON messages
        WHEN NEW.content_type = 0 AND NEW.change IS NULL
        BEGIN
            INSERT INTO message_search (rowid, text)
            VALUES (NEW.id, CAST(NEW.body AS TEXT));
        END
        """,
        """
        CREATE TRIGGER message_search_after_delete AFTER DELETE ON messages
        BEGIN
            DELETE FROM message_search WHERE rowid = OLD.id;
        END
        """,
        """
        CREATE TRIGGER message_search_after_update
        AFTER UPDATE OF body, content_type ON messages
        BEGIN
            DELETE FROM message_search WHERE rowid = OLD.id;
            INSERT INTO message_search (rowid, text)
            SELECT NEW.id, CAST(NEW.body AS TEXT)
            WHERE NEW.content_type = 0 AND NEW.change IS NULL;
        END
        """,
    ),
    # Version 9: change entries (a read, for example) are not messages, so
    # they no longer make contacts. The trigger of version 7 counted them,
    # so the table is rebuilt from the messages alone.
    (
        "DROP TRIGGER contacts_after_message",
        """
        CREATE TRIGGER contacts_after_message AFTER INSERT ON messages
        WHEN NEW.recipient IS NOT NULL AND NEW.recipient != NEW.sender
            AND NEW.change IS NULL
        BEGIN
            INSERT OR IGNORE INTO contacts (user_id, peer_id)
            VALUES (NEW.sender, NEW.recipient);
        END
        """,
        "DELETE FROM contacts",
        """
        INSERT OR IGNORE INTO contacts (user_id, peer_id)
        SELECT DISTINCT sender, recipient FROM messages
        WHERE recipient IS NOT NULL AND recipient != sender AND change IS NULL
        """,
    ),
    # Version 10: group timelines for large groups (fan-out on read). A group
    # with a row in group_timelines is in "read" mode: its messages are stored
    # once, with timeline_seq set, and get no inbox entries. groups.mode keeps
    # its CHECK of version 2, so the mode is read from this table.
    (
        """
        CREATE TABLE group_timelines (
            group_id    INTEGER PRIMARY KEY REFERENCES groups (id),
            head_seq    INTEGER NOT NULL,
            switched_at INTEGER NOT NULL
        )
        """,
        "ALTER TABLE messages ADD COLUMN timeline_seq INTEGER",
        """
        CREATE UNIQUE INDEX messages_timeline ON messages (group_id, timeline_seq)
        WHERE timeline_seq IS NOT NULL
        """,
        # Who may read a timeline: start_seq is the first entry the user
        # reads, left_seq the notice of its removal (NULL while a member) and
        # read_seq its read position.
        """
        CREATE TABLE timeline_members (
            group_id  INTEGER NOT NULL REFERENCES groups (id),
            user_id   INTEGER NOT NULL REFERENCES users (id),
            start_seq INTEGER NOT NULL,
            left_seq  INTEGER,
            read_seq  INTEGER NOT NULL,
            PRIMARY KEY (group_id, user_id)
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX timeline_members_by_user ON timeline_members (user_id, group_id)
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
    # Rebuilding a table drops the old one while other tables refer to it,
    # so foreign keys are off during the upgrade and checked before COMMIT.
    # The pragma has no effect inside a transaction, so it is set before it.
    foreign_keys: int = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        return _migrate_in_transaction(conn, check_foreign_keys=bool(foreign_keys))
    finally:
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")


def _migrate_in_transaction(
    conn: sqlite3.Connection, *, check_foreign_keys: bool
) -> tuple[int, int]:
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

        if check_foreign_keys and old_version < SCHEMA_VERSION:
            violation = conn.execute("PRAGMA foreign_key_check").fetchone()
            if violation is not None:
                raise StoreError(
                    f"schema migration to version {SCHEMA_VERSION} broke a"
                    f" foreign key: row {violation[1]} of table {violation[0]}"
                    f" refers to a missing row of {violation[2]}"
                )

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
