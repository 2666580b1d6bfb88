"""Schema migrations and identity checks for the PostgreSQL store.

Every database of a shard map gets the same schema, and each row is stored in
the database that the shard map picks for its key. ``MIGRATIONS[i]``
upgrades a database from schema version ``i`` to ``i + 1``. The table
``schema_version`` has one row per applied version. Append new migrations at
the end and never edit one that has been released.
"""

from __future__ import annotations

import logging
from typing import Final

from switchboard.store.base import StoreError
from switchboard.store.postgres_conn import Connection
from switchboard.store.shards import ShardMap

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "check_identity",
    "check_shard_map",
    "migrate",
]

logger = logging.getLogger("switchboard.store")

_MIGRATION_LOCK: Final = (0x5342, 1)
"""Two-key advisory lock that serializes migrations. Group locks use the
one-key (bigint) form, whose key space PostgreSQL keeps apart from this one."""


def _notice_of(row: str) -> str:
    """Return SQL that tells whether a group message stored before version 2,
    at alias ``row``, is a notice of the server.

    The sender's own copy of a message sent by a client has a client id, and
    that of a notice has none. Where the sender's copy is in another
    database, content type 2 tells: the server sends its notices with it and
    rejects it from clients.
    """
    return (
        "coalesce((SELECT s.client_id IS NULL FROM inbox AS s"
        f" WHERE s.user_id = {row}.sender AND s.message_id = {row}.message_id),"
        f" {row}.content_type = 2)"
    )


_VERSION_2: Final = (
    # Version 2: conversation lists with read positions and unread counts,
    # change entries, and recalled, edited and deleted messages.
    #
    # A change (a read, recall, edit or deletion) gets inbox entries like a
    # message, with change set to its kind and target to the message it
    # refers to. notice marks the copies of a group notice, which never count
    # as unread. unread is the conversation's unread count for the inbox's
    # owner once the entry is applied; NULL (read as 0) for older entries.
    # deleted marks a copy its owner deleted for themselves. A recall empties
    # the body of every copy.
    """
    ALTER TABLE inbox
        ADD COLUMN notice      boolean NOT NULL DEFAULT false,
        ADD COLUMN change      integer,
        ADD COLUMN target      bigint,
        ADD COLUMN edited_at   bigint,
        ADD COLUMN recalled_at bigint,
        ADD COLUMN deleted     boolean NOT NULL DEFAULT false,
        ADD COLUMN unread      bigint
    """,
    f"UPDATE inbox AS i SET notice = true"
    f" WHERE i.group_id IS NOT NULL AND {_notice_of('i')}",
    """
    CREATE INDEX inbox_group_conversation ON inbox (user_id, group_id, message_id)
        WHERE group_id IS NOT NULL
    """,
    # The holders of a group message, for a recall or an edit.
    """
    CREATE INDEX inbox_group_copies ON inbox (message_id)
        WHERE group_id IS NOT NULL AND change IS NULL
    """,
    "CREATE INDEX inbox_targets ON inbox (user_id, target) WHERE target IS NOT NULL",
    # One row per user and conversation, in the user's database: peer is the
    # other user of a one-to-one conversation (the user itself for notes to
    # self) and group_id is 0, or peer is 0 and group_id is the group.
    # joined_id is the group's highest message id when the user last joined.
    # end_id is the highest message id of the conversation in the user's
    # inbox, and last_id the one shown as the latest (0: none), at inbox seq
    # last_seq.
    """
    CREATE TABLE conversations (
        user_id   bigint NOT NULL,
        peer      bigint NOT NULL,
        group_id  bigint NOT NULL,
        joined_id bigint NOT NULL,
        end_id    bigint NOT NULL,
        last_id   bigint NOT NULL,
        last_seq  bigint NOT NULL,
        read_id   bigint NOT NULL,
        unread    bigint NOT NULL,
        PRIMARY KEY (user_id, peer, group_id)
    )
    """,
    "CREATE INDEX conversations_recent ON conversations (user_id, last_id)",
    # Messages stored before version 2 count as read.
    """
    INSERT INTO conversations (user_id, peer, group_id, joined_id, end_id,
        last_id, last_seq, read_id, unread)
    SELECT DISTINCT ON (user_id, coalesce(peer, 0), coalesce(group_id, 0))
        user_id, coalesce(peer, 0), coalesce(group_id, 0), 0, message_id,
        message_id, seq, message_id, 0
    FROM inbox
    ORDER BY user_id, coalesce(peer, 0), coalesce(group_id, 0), message_id DESC
    """,
    # The group's highest message id when the member joined.
    "ALTER TABLE group_members ADD COLUMN joined_id bigint NOT NULL DEFAULT 0",
    # edit_id is the id of the edit that set the body, so that an older edit
    # relayed late does not overwrite a newer one.
    """
    ALTER TABLE group_messages
        ADD COLUMN notice      boolean NOT NULL DEFAULT false,
        ADD COLUMN edited_at   bigint,
        ADD COLUMN recalled_at bigint,
        ADD COLUMN edit_id     bigint
    """,
    f"UPDATE group_messages AS g SET notice = true WHERE {_notice_of('g')}",
    # target_joined gives, for a group message, the joined_id of each of
    # target_users, in the same order.
    """
    ALTER TABLE outbox
        ADD COLUMN notice        boolean NOT NULL DEFAULT false,
        ADD COLUMN change        integer,
        ADD COLUMN target        bigint,
        ADD COLUMN target_joined bigint[]
    """,
    f"UPDATE outbox AS o SET notice = true"
    f" WHERE o.group_id IS NOT NULL AND {_notice_of('o')}",
)

_VERSION_3: Final = (
    # Version 3: conversation peers and last-seen times, for typing and
    # presence, and full-text search of text messages.
    #
    # A contacts row is kept in the database of user_id, whose inbox contains
    # both directions of the conversation with peer_id: sent means user_id
    # sent peer_id a one-to-one message, received that peer_id sent one to
    # user_id. The two are peers when both are set. A trigger keeps the
    # table current, so no write path needs to. Change entries (reads,
    # recalls, edits, deletions) are not messages and never count.
    """
    CREATE TABLE contacts (
        user_id  bigint  NOT NULL,
        peer_id  bigint  NOT NULL,
        sent     boolean NOT NULL,
        received boolean NOT NULL,
        PRIMARY KEY (user_id, peer_id)
    )
    """,
    """
    INSERT INTO contacts (user_id, peer_id, sent, received)
    SELECT user_id, peer, bool_or(sender = user_id), bool_or(sender <> user_id)
    FROM inbox
    WHERE peer IS NOT NULL AND peer <> user_id AND change IS NULL
    GROUP BY user_id, peer
    """,
    # The WHERE clause skips the update, and a new row version, when the
    # flags are set already, which is the case for most messages.
    """
    CREATE FUNCTION contacts_after_inbox_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO contacts (user_id, peer_id, sent, received)
        VALUES (NEW.user_id, NEW.peer, NEW.sender = NEW.user_id,
            NEW.sender <> NEW.user_id)
        ON CONFLICT (user_id, peer_id) DO UPDATE
            SET sent = contacts.sent OR excluded.sent,
                received = contacts.received OR excluded.received
            WHERE (excluded.sent AND NOT contacts.sent)
                OR (excluded.received AND NOT contacts.received);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER contacts_after_inbox_insert AFTER INSERT ON inbox
    FOR EACH ROW
    WHEN (NEW.peer IS NOT NULL AND NEW.peer <> NEW.user_id AND NEW.change IS NULL)
    EXECUTE FUNCTION contacts_after_inbox_insert()
    """,
    # Kept in the database of user_id.
    """
    CREATE TABLE last_seen (
        user_id bigint PRIMARY KEY,
        seen_at bigint NOT NULL
    )
    """,
    # search_fold prepares text for the 'simple' text search configuration,
    # which only lowercases. It strips combining diacritical marks after
    # Unicode decomposition (NFD) and turns ASCII punctuation into spaces.
    # So "foo.bar" and "e-mail" are two words each, as in the SQLite store.
    r"""
    CREATE FUNCTION search_fold(content text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT regexp_replace(
            regexp_replace(normalize(content, NFD), '[\u0300-\u036f]+', '', 'g'),
            '[!-/:-@\[-`{-~]+', ' ', 'g')
    $$
    """,
    # NULL, so no match, for a body that is not valid UTF-8 or whose words
    # exceed the 1 MB limit of a tsvector. STABLE because convert_from is.
    """
    CREATE FUNCTION search_vector(body bytea) RETURNS tsvector
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
    BEGIN
        RETURN to_tsvector('simple', search_fold(convert_from(body, 'UTF8')));
    EXCEPTION
        WHEN character_not_in_repertoire OR program_limit_exceeded THEN
            RETURN NULL;
    END
    $$
    """,
    # A message matches when it matches every term. A term matches a phrase
    # of its words whose last word is a prefix. A term without words is left
    # out, and a query left without terms is NULL, which matches nothing.
    # search_fold turns quotes and backslashes into spaces, so the words put
    # into the tsquery text cannot change its syntax.
    """
    CREATE FUNCTION search_query(terms text[]) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT string_agg(
            '(' || regexp_replace(phrase::text, '''$', ''':*') || ')', ' & '
        )::tsquery
        FROM unnest(terms) AS term,
            LATERAL phraseto_tsquery('simple', search_fold(term)) AS phrase
        WHERE numnode(phrase) > 0
    $$
    """,
    # The words of a text message (content type 0); NULL for other content
    # and for change entries. A trigger keeps the column in step with every
    # insert and every change of the body, so a recall (empty body) drops
    # the message from the results.
    "ALTER TABLE inbox ADD COLUMN search tsvector",
    """
    UPDATE inbox SET search = search_vector(body)
    WHERE content_type = 0 AND change IS NULL
    """,
    """
    CREATE FUNCTION inbox_search_before_write() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.content_type = 0 AND NEW.change IS NULL THEN
            NEW.search := search_vector(NEW.body);
        ELSE
            NEW.search := NULL;
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER inbox_search_before_write
    BEFORE INSERT OR UPDATE OF body, content_type, change ON inbox
    FOR EACH ROW EXECUTE FUNCTION inbox_search_before_write()
    """,
    "CREATE INDEX inbox_search ON inbox USING gin (search) WHERE search IS NOT NULL",
)

_VERSION_4: Final = (
    # Version 4: group timelines for large groups (fan-out on read), in the
    # group's database. A group in mode 'read' stores each message once in
    # group_messages, with seq set, and head_seq is the highest seq. Such a
    # message keeps its sender's device and client id there, so a resend is
    # found without an inbox copy.
    "ALTER TABLE groups DROP CONSTRAINT groups_mode_check",
    """
    ALTER TABLE groups
        ADD CONSTRAINT groups_mode_check CHECK (mode IN ('write', 'read')),
        ADD COLUMN head_seq bigint NOT NULL DEFAULT 0
    """,
    # A recall or an edit of a timeline message is itself a timeline entry,
    # with change set to its kind and target to the message.
    """
    ALTER TABLE group_messages
        ADD COLUMN seq           bigint,
        ADD COLUMN sender_device text,
        ADD COLUMN client_id     bigint,
        ADD COLUMN change        integer,
        ADD COLUMN target        bigint
    """,
    """
    CREATE UNIQUE INDEX group_messages_timeline ON group_messages (group_id, seq)
        WHERE seq IS NOT NULL
    """,
    """
    CREATE INDEX group_messages_timeline_ids ON group_messages (message_id)
        WHERE seq IS NOT NULL
    """,
    """
    CREATE INDEX group_messages_client_ids
        ON group_messages (group_id, sender, sender_device, client_id)
        WHERE client_id IS NOT NULL
    """,
    # Who may read a timeline: start_seq is the first entry the user reads,
    # left_seq the notice of its removal (NULL while a member) and read_seq
    # its read position.
    """
    CREATE TABLE timeline_members (
        group_id  bigint NOT NULL REFERENCES groups (id),
        user_id   bigint NOT NULL,
        start_seq bigint NOT NULL,
        left_seq  bigint,
        read_seq  bigint NOT NULL,
        PRIMARY KEY (group_id, user_id)
    )
    """,
    "CREATE INDEX timeline_members_by_user ON timeline_members (user_id, group_id)",
    # Timeline messages that a user deleted for themselves.
    """
    CREATE TABLE timeline_deletions (
        group_id   bigint NOT NULL REFERENCES groups (id),
        user_id    bigint NOT NULL,
        message_id bigint NOT NULL,
        PRIMARY KEY (group_id, user_id, message_id)
    )
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # Version 1: accounts, sessions, devices, inboxes and groups.
    (
        # One row: this database's index in the shard map's DSN list, so a
        # reordered list is detected instead of reading the wrong shards.
        """
        CREATE TABLE database_identity (
            singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            database_index integer NOT NULL,
            shard_count    integer NOT NULL
        )
        """,
        # Database 0 only: the assignment of logical shards to databases.
        """
        CREATE TABLE shard_map (
            shard          integer PRIMARY KEY,
            database_index integer NOT NULL
        )
        """,
        # Unsharded tables and id sequences, used on database 0 only.
        """
        CREATE TABLE users (
            id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            name          text   NOT NULL UNIQUE,
            password_hash text   NOT NULL,
            created_at    bigint NOT NULL
        )
        """,
        """
        CREATE TABLE sessions (
            token_hash bytea  PRIMARY KEY,
            user_id    bigint NOT NULL REFERENCES users (id),
            device     text   NOT NULL,
            platform   bigint NOT NULL,
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL
        )
        """,
        "CREATE SEQUENCE message_ids AS bigint",
        "CREATE SEQUENCE group_ids AS bigint",
        # Tables sharded by user id. They have no foreign keys, because the
        # referenced account may live in another database.
        """
        CREATE TABLE devices (
            user_id        bigint NOT NULL,
            device         text   NOT NULL,
            cursor         bigint NOT NULL,
            last_client_id bigint NOT NULL,
            PRIMARY KEY (user_id, device)
        )
        """,
        """
        CREATE TABLE inbox_heads (
            user_id  bigint PRIMARY KEY,
            head_seq bigint NOT NULL
        )
        """,
        # Each inbox entry carries a copy of its message, so that reading an
        # inbox or a conversation touches the reader's database only. Only the
        # sender's own copy of a message sent by a client has sender_device
        # and client_id, the key that deduplicates resends. peer is the other
        # user of a one-to-one message (the user itself for a note to self).
        """
        CREATE TABLE inbox (
            user_id       bigint   NOT NULL,
            seq           bigint   NOT NULL,
            message_id    bigint   NOT NULL,
            sender        bigint   NOT NULL,
            recipient     bigint,
            group_id      bigint,
            peer          bigint,
            content_type  bigint   NOT NULL,
            body          bytea    NOT NULL,
            sent_at       bigint   NOT NULL,
            mentions      bigint[],
            sender_device text,
            client_id     bigint,
            PRIMARY KEY (user_id, seq),
            UNIQUE (user_id, message_id),
            CHECK ((recipient IS NULL) = (group_id IS NOT NULL))
        )
        """,
        """
        CREATE UNIQUE INDEX inbox_client_ids ON inbox (sender, sender_device, client_id)
            WHERE sender_device IS NOT NULL
        """,
        """
        CREATE INDEX inbox_conversation ON inbox (user_id, peer, message_id)
            WHERE peer IS NOT NULL
        """,
        # Tables sharded by group id.
        """
        CREATE TABLE groups (
            id         bigint PRIMARY KEY,
            name       text   NOT NULL,
            created_by bigint NOT NULL,
            created_at bigint NOT NULL,
            mode       text   NOT NULL DEFAULT 'write' CHECK (mode IN ('write'))
        )
        """,
        """
        CREATE TABLE group_members (
            group_id  bigint NOT NULL REFERENCES groups (id),
            user_id   bigint NOT NULL,
            role      text   NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            joined_at bigint NOT NULL,
            PRIMARY KEY (group_id, user_id)
        )
        """,
        "CREATE INDEX group_members_by_user ON group_members (user_id, group_id)",
        """
        CREATE TABLE group_messages (
            group_id     bigint   NOT NULL REFERENCES groups (id),
            message_id   bigint   NOT NULL,
            sender       bigint   NOT NULL,
            content_type bigint   NOT NULL,
            body         bytea    NOT NULL,
            sent_at      bigint   NOT NULL,
            mentions     bigint[],
            PRIMARY KEY (group_id, message_id)
        )
        """,
        # Copies of a message still to be written to other databases: the
        # inboxes of target_users and, if set, the history of target_group.
        # The row is written in the transaction that stores the message, and
        # deleted once every copy is written, so a crash in between leaves
        # work that the next relay pass finishes.
        """
        CREATE TABLE outbox (
            message_id   bigint   PRIMARY KEY,
            target_users bigint[] NOT NULL,
            target_group bigint,
            sender       bigint   NOT NULL,
            recipient    bigint,
            group_id     bigint,
            content_type bigint   NOT NULL,
            body         bytea    NOT NULL,
            sent_at      bigint   NOT NULL,
            mentions     bigint[]
        )
        """,
    ),
    _VERSION_2,
    _VERSION_3,
    _VERSION_4,
)

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""Schema version of a fully migrated database."""


async def migrate(conn: Connection) -> tuple[int, int]:
    """Apply pending migrations in one transaction; return (old, new) version.

    An advisory lock serializes the processes that open one database at
    once, so only the first applies the migrations. Raises StoreError when
    the database's version is above SCHEMA_VERSION.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        old_version: int = await conn.fetchval(
            "SELECT coalesce(max(version), 0) FROM schema_version"
        )
        if old_version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {old_version} is newer than the latest "
                f"version this Switchboard supports ({SCHEMA_VERSION}); "
                "upgrade Switchboard"
            )

        for version in range(old_version, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version (version) VALUES ($1)", version + 1
            )

    if old_version < SCHEMA_VERSION:
        logger.info("applied schema migrations %d -> %d", old_version, SCHEMA_VERSION)
    return old_version, SCHEMA_VERSION


async def check_identity(
    conn: Connection, database_index: int, shard_map: ShardMap
) -> None:
    """Record the database's index on first use; raise StoreError on a mismatch."""
    await conn.execute(
        "INSERT INTO database_identity (database_index, shard_count)"
        " VALUES ($1, $2) ON CONFLICT (singleton) DO NOTHING",
        database_index,
        shard_map.shard_count,
    )
    row = await conn.fetchrow(
        "SELECT database_index, shard_count FROM database_identity"
    )
    assert row is not None, "database_identity row missing after insert"

    if row["database_index"] != database_index:
        raise StoreError(
            f"the database at DSN position {database_index} was set up as "
            f"database {row['database_index']} of the shard map; list the DSNs "
            "in the order they were first opened"
        )
    if row["shard_count"] != shard_map.shard_count:
        raise StoreError(
            f"database {database_index} was set up for {row['shard_count']} "
            f"logical shards, but the shard map has {shard_map.shard_count}; "
            "the shard count cannot change once data is stored"
        )


async def check_shard_map(conn: Connection, shard_map: ShardMap) -> None:
    """Store the shard map in database 0 on first use.

    Raises StoreError when ``shard_map`` differs from the stored map, because
    every process must look for a shard in the same database.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_MIGRATION_LOCK)
        rows = await conn.fetch(
            "SELECT shard, database_index FROM shard_map ORDER BY shard"
        )
        if not rows:
            await conn.executemany(
                "INSERT INTO shard_map (shard, database_index) VALUES ($1, $2)",
                list(enumerate(shard_map.assignment)),
            )
            logger.info(
                "stored a shard map of %d shards on %d databases",
                shard_map.shard_count,
                len(shard_map.dsns),
            )
            return

    stored = tuple(row["database_index"] for row in rows)
    if stored == shard_map.assignment:
        return
    for shard, (old, new) in enumerate(zip(stored, shard_map.assignment, strict=False)):
        if old != new:
            raise StoreError(
                f"shard map mismatch: shard {shard} is on database {old} in the "
                f"stored map but on database {new} in this process's map; update "
                "the stored map (table shard_map of database 0) after moving a "
                "shard, and give every process the same map"
            )
    raise StoreError(
        f"shard map mismatch: the stored map has {len(stored)} shards and this "
        f"process's map has {shard_map.shard_count}"
    )
