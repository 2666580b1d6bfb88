"""Changes to sent messages in the PostgreSQL store: recall, edit, delete-for-me.

A message is held by every user whose inbox has a copy of it: the sender and
the recipient of a one-to-one message, and those who were members of its
group when it was sent. A recall or an edit is written like a message from
the actor to every holder: first in the actor's database, then through the
outbox. A deletion for oneself touches the user's database only.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from switchboard.ids import MessageId, UserId
from switchboard.store.base import (
    ChangeResult,
    HeldMessage,
    InboxEntry,
    MessageNotFound,
    MessageRecalled,
    StoredMessage,
)
from switchboard.store.postgres_changes import (
    CHANGE_DELETE,
    CHANGE_EDIT,
    CHANGE_RECALL,
    append_change_copies,
)
from switchboard.store.postgres_conn import Connection, ConnectionSet, transact
from switchboard.store.postgres_conversations import lock_heads
from switchboard.store.postgres_inbox import next_message_id
from switchboard.store.postgres_relay import CopyWriter, Stored
from switchboard.store.postgres_rows import (
    COPY_COLUMNS,
    AppendedCopy,
    OutgoingMessage,
    stored_from_row,
)
from switchboard.store.shards import ShardMap

__all__ = ["change_for_everyone", "delete_for", "select_held"]

_NAMES: Final = {CHANGE_RECALL: "recall_message", CHANGE_EDIT: "edit_message"}


async def select_held(
    conn: Connection, message_id: MessageId, viewer: UserId, *, lock: bool = False
) -> HeldMessage | None:
    """Return the viewer's copy of a message (not a change entry), or None.

    With ``lock``, the copy's row stays locked until the transaction ends.
    """
    row = await conn.fetchrow(
        f"SELECT deleted, {COPY_COLUMNS} FROM inbox"
        " WHERE user_id = $1 AND message_id = $2 AND change IS NULL"
        + (" FOR UPDATE" if lock else ""),
        viewer,
        message_id,
    )
    if row is None:
        return None
    return HeldMessage(
        stored_from_row(row), deleted=row["deleted"], notice=row["notice"]
    )


async def change_for_everyone(
    writer: CopyWriter,
    conns: ConnectionSet,
    actor: UserId,
    message_id: MessageId,
    change: int,
    body: bytes,
    now: int,
) -> ChangeResult:
    """Recall or edit a message for every holder, as Store.recall_message and
    Store.edit_message do. ``conns`` holds a connection to every database."""
    shard_map = writer.shard_map
    actor_db = shard_map.database_of(actor)
    conn = await conns.get(actor_db)
    held = await select_held(conn, message_id, actor)
    if held is None:
        raise MessageNotFound(f"no message with id {message_id} for user {actor}")
    if held.message.recalled_at:
        if change == CHANGE_EDIT:
            raise MessageRecalled(f"message {message_id} was recalled")
        return ChangeResult(held.message, {})

    # Copies still waiting in the outbox would miss the change. A notice's
    # outbox row is in the group's database, a user's in the sender's.
    origin: int = held.message.sender
    if held.notice and held.message.group_id is not None:
        origin = held.message.group_id
    await writer.relay(conns, shard_map.database_of(origin), message_id)
    holders = await _holders(conns, shard_map, held.message, actor)

    async def store() -> tuple[StoredMessage, Stored | None]:
        # Heads in ascending user order, then the copy: the lock order of
        # every inbox write.
        local = [user for user in holders if shard_map.database_of(user) == actor_db]
        await lock_heads(conn, [actor, *local])
        current = await select_held(conn, message_id, actor, lock=True)
        assert current is not None, "a copy in an inbox is never removed"
        message = current.message
        if message.recalled_at:
            if change == CHANGE_EDIT:
                raise MessageRecalled(f"message {message_id} was recalled")
            return message, None
        change_id = await next_message_id(await conns.get(0))
        entry = _change_of(change_id, actor, message, change, body, now)
        stored = await writer.store_copies(
            conn, actor_db, entry, holders, message.group_id
        )
        return message, stored

    message, stored = await transact(conn, _NAMES[change], store)
    if stored is None:
        return ChangeResult(message, {})
    copies = await writer.finish(conns, actor_db, stored)
    if change == CHANGE_RECALL:
        message = dataclasses.replace(message, body=b"", recalled_at=now)
    else:
        message = dataclasses.replace(message, body=body, edited_at=now)
    return ChangeResult(message, _entries(stored.message, copies))


async def delete_for(
    conn: Connection,
    id_conn: Connection,
    user_id: UserId,
    message_id: MessageId,
    now: int,
) -> ChangeResult:
    """Delete a message for one user, as Store.delete_message_for does.

    ``conn`` is the connection to the user's database and ``id_conn`` the one
    to database 0, which allocates message ids.
    """

    async def store() -> ChangeResult:
        await lock_heads(conn, [user_id])
        held = await select_held(conn, message_id, user_id, lock=True)
        if held is None:
            raise MessageNotFound(f"no message with id {message_id} for user {user_id}")
        if held.deleted:
            return ChangeResult(held.message, {})

        change_id = await next_message_id(id_conn)
        entry = _change_of(change_id, user_id, held.message, CHANGE_DELETE, b"", now)
        copies = await append_change_copies(conn, entry, [user_id], once=False)
        return ChangeResult(held.message, _entries(entry, copies))

    return await transact(conn, "delete_message_for", store)


def _change_of(
    change_id: MessageId,
    actor: UserId,
    message: StoredMessage,
    change: int,
    body: bytes,
    now: int,
) -> OutgoingMessage:
    """Return the change entry that ``actor`` makes to ``message``."""
    recipient = None
    if message.group_id is None:
        recipient = message.recipient if actor == message.sender else message.sender
    return OutgoingMessage(
        id=change_id,
        sender=actor,
        recipient=recipient,
        group_id=message.group_id,
        content_type=message.content_type,
        body=body,
        sent_at=now,
        change=change,
        target=message.id,
    )


async def _holders(
    conns: ConnectionSet, shard_map: ShardMap, message: StoredMessage, actor: UserId
) -> list[UserId]:
    """Return the users who get a change of the message: those whose inboxes
    have a copy of it, and for a group message only its current members and
    ``actor``. A removed member hears nothing more of the group.

    Asks every database for a group message; ``conns`` must hold them all.
    """
    if message.group_id is None:
        return list(dict.fromkeys((message.sender, message.recipient)))
    group_db = await conns.get(shard_map.database_of(message.group_id))
    members = {
        UserId(row["user_id"])
        for row in await group_db.fetch(
            "SELECT user_id FROM group_members WHERE group_id = $1", message.group_id
        )
    }
    holders: list[UserId] = []
    for database in range(len(shard_map.dsns)):
        rows = await (await conns.get(database)).fetch(
            "SELECT user_id FROM inbox WHERE message_id = $1"
            " AND group_id IS NOT NULL AND change IS NULL",
            message.id,
        )
        holders += [UserId(row["user_id"]) for row in rows]
    return sorted(user for user in holders if user in members or user == actor)


def _entries(
    change: OutgoingMessage, copies: dict[UserId, AppendedCopy]
) -> dict[UserId, InboxEntry]:
    stored = change.stored()
    return {
        user: InboxEntry(copy.seq, stored, copy.unread) for user, copy in copies.items()
    }
