"""Writing a message's copies: in its origin transaction, then through the outbox.

A message is written first in one transaction on its origin database. That
transaction stores every copy whose inbox is in the same database and an
outbox row naming the copies that belong in other databases. Those copies are
written next, one transaction per database, and the outbox row is deleted.
Writing a copy is idempotent, so an outbox row can be replayed any number of
times. A change entry (a recall or an edit) travels the same way, and writing
its copy applies the change to the copy of its target.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from switchboard.ids import GroupId, MessageId, UserId
from switchboard.store import postgres_groups as groups_sql
from switchboard.store import postgres_inbox as inbox_sql
from switchboard.store.postgres_changes import (
    append_change_copies,
    apply_group_change,
)
from switchboard.store.postgres_conn import Connection, ConnectionSet, transact
from switchboard.store.postgres_rows import AppendedCopy, OutgoingMessage
from switchboard.store.shards import ShardMap

__all__ = ["CopyWriter", "Stored"]

logger = logging.getLogger("switchboard.store")

_RELAY_BATCH: Final = 100
"""Maximum outbox rows one relay pass replays per database."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A message written in its origin transaction."""

    message: OutgoingMessage
    copies: dict[UserId, AppendedCopy]
    """The copies written in the origin database."""
    pending: bool
    """An outbox row names copies still to be written in other databases."""


class CopyWriter:
    """Writes the copies of messages into the databases of a shard map."""

    def __init__(self, shard_map: ShardMap) -> None:
        self.shard_map = shard_map
        """Where each user's and group's rows are."""

    async def store_copies(
        self,
        origin: Connection,
        origin_db: int,
        message: OutgoingMessage,
        users: Sequence[UserId],
        group_id: GroupId | None,
        joined: Mapping[UserId, MessageId] | None = None,
    ) -> Stored:
        """Write a new message in its origin transaction.

        Appends the copies for ``users`` whose inbox is in the origin database
        and adds the message to the history of ``group_id``, if given, when
        the group is there too. Whatever belongs in other databases goes into
        an outbox row, which finish() replays. ``joined`` is passed on to
        append_copies.
        """
        database_of = self.shard_map.database_of
        local = [user for user in users if database_of(user) == origin_db]
        remote = [user for user in users if database_of(user) != origin_db]
        copies = await _append(origin, message, local, once=False, joined=joined)

        target_group = None
        if group_id is not None:
            if database_of(group_id) == origin_db:
                await _add_to_history(origin, group_id, message)
            else:
                target_group = group_id

        pending = bool(remote) or target_group is not None
        if pending:
            remote_joined = None if joined is None else {u: joined[u] for u in remote}
            await inbox_sql.insert_outbox(
                origin, message, remote, target_group, remote_joined
            )
        return Stored(message, copies, pending)

    async def finish(
        self, conns: ConnectionSet, origin_db: int, stored: Stored
    ) -> dict[UserId, AppendedCopy]:
        """Write the copies an outbox row names; return every copy."""
        if not stored.pending:
            return stored.copies
        relayed = await self.relay(conns, origin_db, stored.message.id)
        return stored.copies | relayed

    async def relay(
        self, conns: ConnectionSet, origin_db: int, message_id: MessageId
    ) -> dict[UserId, AppendedCopy]:
        """Write the copies of the message's outbox row, if any, then delete it.

        Returns the copies the row names. Each database's copies are written
        in one transaction, and a copy already written keeps its sequence.
        """
        origin = await conns.get(origin_db)
        pending = await inbox_sql.select_outbox(origin, message_id)
        if pending is None:
            return {}

        group_id = pending.group_id
        database_of = self.shard_map.database_of
        by_database: dict[int, list[UserId]] = {}
        for user in pending.users:
            by_database.setdefault(database_of(user), []).append(user)
        if group_id is not None:
            by_database.setdefault(database_of(group_id), [])

        copies: dict[UserId, AppendedCopy] = {}
        for database in sorted(by_database):
            conn = await conns.get(database)
            history = None
            if group_id is not None and database_of(group_id) == database:
                history = group_id
            write = functools.partial(
                _write_copies, conn, pending, by_database[database], history
            )
            copies |= await transact(conn, "relay", write)

        await inbox_sql.delete_outbox(origin, message_id)
        return copies

    async def relay_pending(self, conns: ConnectionSet) -> int:
        """Replay the oldest outbox rows of every database; return how many."""
        replayed = 0
        for database in range(len(self.shard_map.dsns)):
            conn = await conns.get(database)
            for message_id in await inbox_sql.select_outbox_ids(conn, _RELAY_BATCH):
                await self.relay(conns, database, message_id)
                replayed += 1
        if replayed:
            logger.info("relayed %d messages left in outboxes", replayed)
        return replayed


async def _write_copies(
    conn: Connection,
    pending: inbox_sql.PendingCopies,
    users: list[UserId],
    history: GroupId | None,
) -> dict[UserId, AppendedCopy]:
    """Write one database's copies of a relayed message; a copy written before
    is kept. ``history`` is the group whose history is here, if any.
    """
    message = pending.message
    copies = await _append(conn, message, users, once=True, joined=pending.joined)
    if history is not None:
        await _add_to_history(conn, history, message)
    return copies


async def _append(
    conn: Connection,
    message: OutgoingMessage,
    users: Sequence[UserId],
    *,
    once: bool,
    joined: Mapping[UserId, MessageId] | None,
) -> dict[UserId, AppendedCopy]:
    if message.change:
        return await append_change_copies(conn, message, users, once=once)
    return await inbox_sql.append_copies(conn, message, users, once=once, joined=joined)


async def _add_to_history(
    conn: Connection, group_id: GroupId, message: OutgoingMessage
) -> None:
    if message.change:
        await apply_group_change(conn, group_id, message)
    else:
        await groups_sql.insert_group_message(conn, group_id, message)
