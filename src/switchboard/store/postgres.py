"""PostgreSQL implementation of the Store interface, sharded by user and group id.

Rows live in the database that the shard map (store/shards.py) picks:

- database 0: accounts, sessions and the id sequences;
- the user's database: the user's inbox, inbox head, devices and
  conversations (read positions and unread counts);
- the group's database: the group, its members and its history.

A message is written first in one transaction on its origin database: the
sender's for a message from a client, the group's for a group notice. That
transaction stores the deduplication key, every copy whose inbox is in the
same database, and an outbox row naming the copies that belong in other
databases. Those copies are written next, one transaction per database, and
the outbox row is deleted. Writing a copy is idempotent, so the outbox row
can be replayed: by a resend of the message, by the relay pass at open() and
by the periodic relay. With one database there is no outbox row and every
write is one transaction. A recall or an edit is written the same way, from
the actor's database to every inbox that holds the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import asyncpg

from switchboard.ids import (
    ClientMessageId,
    DeviceId,
    GroupId,
    MessageId,
    Seq,
    UserId,
)
from switchboard.store import postgres_conversations as conversations_sql
from switchboard.store import postgres_groups as groups_sql
from switchboard.store import postgres_inbox as inbox_sql
from switchboard.store import postgres_peers as peers_sql
from switchboard.store import postgres_recall as recall_sql
from switchboard.store import postgres_receipts as receipts_sql
from switchboard.store import postgres_search as search_sql
from switchboard.store import postgres_timeline as timeline_sql
from switchboard.store import postgres_timeline_ops as timeline_ops
from switchboard.store.base import (
    GROUP_MODE_READ,
    AlreadyMember,
    AppendResult,
    ChangeResult,
    ConversationKey,
    ConversationPage,
    DeviceState,
    Group,
    GroupAppendResult,
    GroupChange,
    GroupFull,
    GroupNotice,
    HeldMessage,
    InboxEntry,
    InboxPage,
    InvalidMention,
    Member,
    NameTaken,
    NotMember,
    ReadCount,
    ReadResult,
    Role,
    Session,
    Store,
    StoredMessage,
    StoreError,
    TimelinePage,
    TimelineState,
    User,
)
from switchboard.store.postgres_changes import CHANGE_EDIT, CHANGE_READ, CHANGE_RECALL
from switchboard.store.postgres_conn import Connection, ConnectionSet, transact
from switchboard.store.postgres_inbox import FirstCopy
from switchboard.store.postgres_relay import CopyWriter, Stored
from switchboard.store.postgres_rows import AppendedCopy, OutgoingMessage
from switchboard.store.postgres_schema import check_identity, check_shard_map, migrate
from switchboard.store.shards import ShardMap

__all__ = ["PostgresStore"]

logger = logging.getLogger("switchboard.store")

_T = TypeVar("_T")

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

_DRIVER_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
"""Errors of the driver and the network, translated into StoreError.
TimeoutError is an OSError."""


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Membership:
    """A group after a change in its database, and the users it concerns."""

    group: Group
    recipients: dict[UserId, MessageId]
    """The members who get the change's notice, each with the group's highest
    message id when the member joined (joined_id)."""
    joined: tuple[UserId, ...] = ()
    """The users the change added."""


class PostgresStore(Store):
    """Store in one or more PostgreSQL databases, shared by many processes.

    ``databases`` is one DSN, a list of DSNs spread evenly over the default
    256 logical shards, or a ShardMap. Every process that opens the same
    databases must use the same map: open() raises StoreError otherwise.

    ``pool_size`` is the maximum number of connections per database.
    ``relay_interval_s`` is the time between passes that write copies left
    by a failed or crashed write (outbox rows). Writes raise ValueError for
    an integer outside PostgreSQL's bigint range and for a negative client
    id or cursor. Cancelling a caller does not cancel its operation.
    """

    def __init__(
        self,
        databases: str | Sequence[str] | ShardMap,
        *,
        pool_size: int = 10,
        relay_interval_s: float = 10.0,
        acquire_timeout_s: float = 30.0,
    ) -> None:
        if isinstance(databases, ShardMap):
            self.shard_map = databases
        elif isinstance(databases, str):
            self.shard_map = ShardMap.even([databases])
        else:
            self.shard_map = ShardMap.even(databases)
        if pool_size < 1:
            raise ValueError(f"invalid pool_size {pool_size}: must be at least 1")
        if relay_interval_s <= 0:
            raise ValueError(
                f"invalid relay_interval_s {relay_interval_s}: must be positive"
            )

        self._copies = CopyWriter(self.shard_map)
        self._pool_size = pool_size
        self._relay_interval_s = relay_interval_s
        self._acquire_timeout_s = acquire_timeout_s
        self._pools: list[asyncpg.Pool[asyncpg.Record]] = []
        self._operations: set[asyncio.Task[Any]] = set()
        self._relay_task: asyncio.Task[None] | None = None
        self._state = _State.NEW
        self._lifecycle_lock = asyncio.Lock()

    # Lifecycle.

    async def open(self) -> None:
        async with self._lifecycle_lock:
            if self._state is not _State.NEW:
                raise StoreError(
                    f"PostgreSQL store is {self._state.value}; "
                    "open() may be called once, on a new store"
                )

            try:
                await self._connect()
            except BaseException as exc:
                await self._close_pools()
                self._state = _State.CLOSED
                logger.error("failed to open PostgreSQL store: %s", exc)
                if isinstance(exc, _DRIVER_ERRORS):
                    raise StoreError(f"failed to open PostgreSQL store: {exc}") from exc
                raise

            self._state = _State.OPEN
            self._relay_task = asyncio.create_task(self._relay_periodically())
            logger.info(
                "opened PostgreSQL store: %d databases, %d shards",
                len(self.shard_map.dsns),
                self.shard_map.shard_count,
            )

    async def close(self) -> None:
        """Let running operations finish, then close every pool.

        Calling close() again, or on a store never opened, does nothing.
        """
        async with self._lifecycle_lock:
            if self._state is not _State.OPEN:
                self._state = _State.CLOSED
                return

            self._state = _State.CLOSING
            if self._relay_task is not None:
                self._relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._relay_task
            while self._operations:
                await asyncio.wait(set(self._operations))
            await self._close_pools()
            self._state = _State.CLOSED
            logger.info("closed PostgreSQL store")

    async def synchronous_commit(self) -> list[str]:
        """Return ``SHOW synchronous_commit`` of a pooled connection to each
        database, in database order."""

        async def work(conns: ConnectionSet) -> list[str]:
            await conns.get_all()
            return [
                str(await (await conns.get(index)).fetchval("SHOW synchronous_commit"))
                for index in range(len(self.shard_map.dsns))
            ]

        return await self._run("synchronous_commit", work)

    async def _connect(self) -> None:
        for index, dsn in enumerate(self.shard_map.dsns):
            # A commit returns once the database flushed its WAL, whatever the
            # database's or role's default, so an acknowledged message
            # survives a crash of PostgreSQL or of its host.
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=self._pool_size,
                server_settings={"synchronous_commit": "on"},
            )
            self._pools.append(pool)
            async with pool.acquire() as conn:
                await migrate(conn)
                await check_identity(conn, index, self.shard_map)

        async with self._pools[0].acquire() as conn:
            await check_shard_map(conn, self.shard_map)

        conns = self._connection_set()
        try:
            await conns.get_all()
            await self._copies.relay_pending(conns)
        finally:
            await conns.release()

    async def _close_pools(self) -> None:
        pools, self._pools = self._pools, []
        for pool in pools:
            try:
                await pool.close()
            except _DRIVER_ERRORS as exc:
                logger.warning("failed to close a PostgreSQL pool cleanly: %s", exc)
                pool.terminate()

    def _connection_set(self) -> ConnectionSet:
        return ConnectionSet(self._pools, self._acquire_timeout_s)

    def _database_of(self, key: int) -> int:
        return self.shard_map.database_of(key)

    # Running operations.

    async def _run(
        self,
        name: str,
        work: Callable[[ConnectionSet], Awaitable[_T]],
        *,
        all_databases: bool = False,
    ) -> _T:
        """Run ``work`` as its own task, with connections released afterwards.

        The task is shielded from the caller's cancellation, so a write either
        completes or fails on its own, and close() waits for it. With
        ``all_databases``, ``work`` starts holding a connection to each
        database, for writes that may touch any of them.
        """
        if self._state is _State.NEW:
            raise StoreError("PostgreSQL store is not open; call open() first")
        if self._state is not _State.OPEN:
            raise StoreError("PostgreSQL store is closed")

        task = asyncio.create_task(
            self._run_with_connections(name, work, all_databases)
        )
        self._operations.add(task)
        task.add_done_callback(self._forget_operation)
        return await asyncio.shield(task)

    def _forget_operation(self, task: asyncio.Task[Any]) -> None:
        self._operations.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, in case the caller was cancelled

    async def _run_with_connections(
        self,
        name: str,
        work: Callable[[ConnectionSet], Awaitable[_T]],
        all_databases: bool,
    ) -> _T:
        conns = self._connection_set()
        try:
            if all_databases:
                # NOTE: holds one connection per database for the whole write,
                # even where it needs fewer, because acquiring them in index
                # order up front is what rules out deadlocks between pools.
                await conns.get_all()
            return await work(conns)
        except _DRIVER_ERRORS as exc:
            logger.warning("%s failed: %s", name, exc)
            raise StoreError(f"{name} failed: {exc}") from exc
        finally:
            await conns.release()

    # Accounts.

    async def create_user(self, name: str, password_hash: str, now: int) -> User:
        _check_int64(now=now)

        async def work(conns: ConnectionSet) -> User:
            conn = await conns.get(0)
            try:
                user_id = await conn.fetchval(
                    "INSERT INTO users (name, password_hash, created_at)"
                    " VALUES ($1, $2, $3) RETURNING id",
                    name,
                    password_hash,
                    now,
                )
            except asyncpg.UniqueViolationError as exc:
                raise NameTaken(f"account name {name!r} already exists") from exc
            return User(UserId(user_id), name, password_hash, now)

        return await self._run("create_user", work)

    async def get_user(self, user_id: UserId) -> User | None:
        if not _fits_int64(user_id):
            return None
        return await self._select_user("id", user_id)

    async def get_user_by_name(self, name: str) -> User | None:
        return await self._select_user("name", name)

    async def count_users(self) -> int:
        async def work(conns: ConnectionSet) -> int:
            conn = await conns.get(0)
            return int(await conn.fetchval("SELECT count(*) FROM users"))

        return await self._run("count_users", work)

    async def _select_user(self, column: str, value: int | str) -> User | None:
        async def work(conns: ConnectionSet) -> User | None:
            row = await (await conns.get(0)).fetchrow(
                "SELECT id, name, password_hash, created_at FROM users"
                f" WHERE {column} = $1",
                value,
            )
            if row is None:
                return None
            return User(
                UserId(row["id"]), row["name"], row["password_hash"], row["created_at"]
            )

        return await self._run("get_user", work)

    # Sessions.

    async def create_session(self, session: Session) -> None:
        _check_int64(
            user_id=session.user_id,
            platform=session.platform,
            created_at=session.created_at,
            expires_at=session.expires_at,
        )

        async def work(conns: ConnectionSet) -> None:
            await (await conns.get(0)).execute(
                "INSERT INTO sessions (token_hash, user_id, device, platform,"
                " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                session.token_hash,
                session.user_id,
                session.device,
                session.platform,
                session.created_at,
                session.expires_at,
            )

        await self._run("create_session", work)

    async def get_session(self, token_hash: bytes) -> Session | None:
        return await self._session_query(
            "get_session", "SELECT * FROM sessions WHERE token_hash = $1", token_hash
        )

    async def delete_session(self, token_hash: bytes) -> Session | None:
        return await self._session_query(
            "delete_session",
            "DELETE FROM sessions WHERE token_hash = $1 RETURNING *",
            token_hash,
        )

    async def change_password(
        self, user_id: UserId, password_hash: str, keep_token_hash: bytes
    ) -> list[Session]:
        _check_int64(user_id=user_id)

        async def work(conns: ConnectionSet) -> list[Session]:
            conn = await conns.get(0)
            async with conn.transaction():
                await conn.execute(
                    "UPDATE users SET password_hash = $1 WHERE id = $2",
                    password_hash,
                    user_id,
                )
                # NOTE: scans the sessions table, which has no index by user.
                rows = await conn.fetch(
                    "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2"
                    " RETURNING *",
                    user_id,
                    keep_token_hash,
                )
            return [_session_from_record(row) for row in rows]

        return await self._run("change_password", work)

    async def find_in_bodies(
        self, user_id: UserId, content_type: int, needle: bytes, limit: int
    ) -> list[tuple[UserId, bytes]]:
        if not _fits_int64(user_id):
            return []

        async def work(conns: ConnectionSet) -> list[tuple[UserId, bytes]]:
            conn = await conns.get(self._database_of(user_id))
            # NOTE: scans the user's whole inbox; index the bodies if this
            # gets slow.
            rows = await conn.fetch(
                "SELECT sender, body FROM inbox WHERE user_id = $1"
                " AND content_type = $2 AND position($3::bytea IN body) > 0"
                " LIMIT $4",
                user_id,
                content_type,
                needle,
                limit,
            )
            return [(UserId(row["sender"]), bytes(row["body"])) for row in rows]

        return await self._run("find_in_bodies", work)

    async def _session_query(
        self, name: str, query: str, token_hash: bytes
    ) -> Session | None:
        async def work(conns: ConnectionSet) -> Session | None:
            row = await (await conns.get(0)).fetchrow(query, token_hash)
            return None if row is None else _session_from_record(row)

        return await self._run(name, work)

    # Devices.

    async def get_device(self, user_id: UserId, device: DeviceId) -> DeviceState:
        if not _fits_int64(user_id):
            return DeviceState(cursor=Seq(0), last_client_id=ClientMessageId(0))

        async def work(conns: ConnectionSet) -> DeviceState:
            row = await (await conns.get(self._database_of(user_id))).fetchrow(
                "SELECT cursor, last_client_id FROM devices"
                " WHERE user_id = $1 AND device = $2",
                user_id,
                device,
            )
            if row is None:
                return DeviceState(cursor=Seq(0), last_client_id=ClientMessageId(0))
            return DeviceState(
                cursor=Seq(row["cursor"]),
                last_client_id=ClientMessageId(row["last_client_id"]),
            )

        return await self._run("get_device", work)

    async def set_cursor(self, user_id: UserId, device: DeviceId, seq: Seq) -> None:
        _check_int64(user_id=user_id)
        _check_non_negative_int64(seq=seq)

        async def work(conns: ConnectionSet) -> None:
            await (await conns.get(self._database_of(user_id))).execute(
                "INSERT INTO devices (user_id, device, cursor, last_client_id)"
                " VALUES ($1, $2, $3, 0) ON CONFLICT (user_id, device)"
                " DO UPDATE SET cursor = greatest(devices.cursor, excluded.cursor)",
                user_id,
                device,
                seq,
            )

        await self._run("set_cursor", work)

    # Messages.

    async def append_message(
        self,
        sender: UserId,
        device: DeviceId,
        client_id: ClientMessageId,
        recipient: UserId,
        content_type: int,
        body: bytes,
        sent_at: int,
    ) -> AppendResult:
        _check_int64(
            sender=sender,
            recipient=recipient,
            content_type=content_type,
            sent_at=sent_at,
        )
        _check_non_negative_int64(client_id=client_id)

        async def work(conns: ConnectionSet) -> AppendResult:
            origin_db = self._database_of(sender)
            origin = await conns.get(origin_db)

            async def store() -> FirstCopy | Stored:
                first = await inbox_sql.find_first_copy(
                    origin, sender, device, client_id
                )
                if first is not None:
                    return first
                message = OutgoingMessage(
                    id=await inbox_sql.next_message_id(await conns.get(0)),
                    sender=sender,
                    recipient=recipient,
                    group_id=None,
                    content_type=content_type,
                    body=body,
                    sent_at=sent_at,
                    origin=(device, client_id),
                )
                stored = await self._copies.store_copies(
                    origin, origin_db, message, [sender, recipient], None
                )
                await inbox_sql.raise_last_client_id(origin, sender, device, client_id)
                return stored

            stored = await transact(origin, "append_message", store)
            if isinstance(stored, FirstCopy):
                return await self._repeat_direct(conns, origin_db, stored)

            copies = await self._copies.finish(conns, origin_db, stored)
            return AppendResult(
                message=stored.message.stored(),
                sender_seq=copies[sender].seq,
                recipient_seq=copies[recipient].seq,
                duplicate=False,
                sender_unread=copies[sender].unread,
                recipient_unread=copies[recipient].unread,
            )

        return await self._run("append_message", work, all_databases=True)

    async def _repeat_direct(
        self, conns: ConnectionSet, origin_db: int, first: FirstCopy
    ) -> AppendResult:
        """Return the first copy of a resent message, finishing its copies."""
        message = first.message
        relayed = await self._copies.relay(conns, origin_db, message.id)

        if message.recipient is None:
            recipient_seq = Seq(0)  # a group message has no recipient sequence
        elif message.recipient == message.sender:
            recipient_seq = first.sender_seq
        elif message.recipient in relayed:
            recipient_seq = relayed[message.recipient].seq
        else:
            conn = await conns.get(self._database_of(message.recipient))
            seq = await inbox_sql.copy_seq(conn, message.recipient, message.id)
            if seq is None:
                logger.warning(
                    "message %d has no copy in the inbox of user %d",
                    message.id,
                    message.recipient,
                )
            recipient_seq = Seq(0) if seq is None else seq

        return AppendResult(
            message=first.current,
            sender_seq=first.sender_seq,
            recipient_seq=recipient_seq,
            duplicate=True,
        )

    async def read_inbox(
        self, user_id: UserId, after_seq: Seq, limit: int
    ) -> InboxPage:
        _check_limit(limit)
        if not _fits_int64(user_id):
            return InboxPage(entries=[], has_more=False, head_seq=Seq(0))
        # Stored sequences are 1 to _INT64_MAX, so clamping changes no result.
        after_seq = Seq(max(0, min(after_seq, _INT64_MAX)))
        limit = min(limit, _INT64_MAX - 1)

        async def work(conns: ConnectionSet) -> InboxPage:
            conn = await conns.get(self._database_of(user_id))
            return await inbox_sql.select_inbox_page(conn, user_id, after_seq, limit)

        return await self._run("read_inbox", work)

    async def head_seq(self, user_id: UserId) -> Seq:
        if not _fits_int64(user_id):
            return Seq(0)

        async def work(conns: ConnectionSet) -> Seq:
            conn = await conns.get(self._database_of(user_id))
            return await inbox_sql.select_head_seq(conn, user_id)

        return await self._run("head_seq", work)

    async def read_conversation(
        self,
        user_id: UserId,
        peer_id: UserId,
        before_id: MessageId | None,
        limit: int,
    ) -> tuple[list[StoredMessage], bool]:
        _check_limit(limit)
        if not (_fits_int64(user_id) and _fits_int64(peer_id)):
            return [], False
        before_id = _clamp_before_id(before_id)
        if before_id is not None and before_id < _INT64_MIN:
            return [], False
        limit = min(limit, _INT64_MAX - 1)

        async def work(conns: ConnectionSet) -> tuple[list[StoredMessage], bool]:
            # The user's inbox has a copy of every message of the conversation.
            conn = await conns.get(self._database_of(user_id))
            return await inbox_sql.select_conversation_page(
                conn, user_id, peer_id, before_id, limit
            )

        return await self._run("read_conversation", work)

    # Conversations.

    async def list_conversations(
        self, user_id: UserId, before_id: MessageId | None, limit: int
    ) -> ConversationPage:
        _check_limit(limit)
        empty = ConversationPage([], has_more=False, head_seq=Seq(0), total_unread=0)
        if not _fits_int64(user_id):
            return empty
        before_id = _clamp_before_id(before_id)
        if before_id is not None and before_id < _INT64_MIN:
            return empty
        below = _INT64_MAX if before_id is None else before_id
        limit = min(limit, _INT64_MAX - 1)

        async def work(conns: ConnectionSet) -> ConversationPage:
            return await conversations_sql.select_conversation_page(
                conns, self.shard_map, user_id, below, limit
            )

        return await self._run("list_conversations", work)

    async def mark_read(
        self,
        user_id: UserId,
        key: ConversationKey,
        up_to: MessageId | None,
        now: int,
    ) -> ReadResult:
        _check_int64(user_id=user_id, peer=key.peer, group=key.group, now=now)
        if up_to is not None:
            up_to = MessageId(max(_INT64_MIN, min(up_to, _INT64_MAX)))

        async def work(conns: ConnectionSet) -> ReadResult:
            user_db = self._database_of(user_id)
            await conns.get_many([0, user_db])
            new_id = functools.partial(inbox_sql.next_message_id, await conns.get(0))
            conn = await conns.get(user_db)
            move = functools.partial(
                receipts_sql.mark_read, conn, user_id, key, up_to, now, new_id
            )
            result = await transact(conn, "mark_read", move)
            if result is not None:
                return result
            if not key.group:
                return ReadResult(MessageId(0), 0, None)

            # A member without a group message yet has no conversation row.
            await conns.release()
            group_conn = await conns.get(self._database_of(key.group))
            joined = await groups_sql.select_member_joins(group_conn, key.group)
            if user_id not in joined:
                raise NotMember(key.group, user_id)
            return ReadResult(joined[user_id], 0, None)

        return await self._run("mark_read", work)

    async def group_read_counts(
        self, group_id: GroupId, message_ids: Sequence[MessageId]
    ) -> list[ReadCount]:
        if not _fits_int64(group_id):
            return []
        ids = [message_id for message_id in message_ids if _fits_int64(message_id)]
        if not ids:
            return []

        async def work(conns: ConnectionSet) -> list[ReadCount]:
            group_conn = await conns.get(self._database_of(group_id))
            members, senders = await groups_sql.select_group_read_state(
                group_conn, group_id, ids
            )
            group = await groups_sql.select_group(group_conn, group_id)
            if group is not None and group.mode == GROUP_MODE_READ:
                # NOTE: read positions of messages from before the group
                # became large are not consulted, so those count fewer readers.
                positions = await timeline_sql.select_timeline_positions(
                    group_conn, group_id
                )
                joined = {user: joined_id for user, (_, joined_id) in positions.items()}
                reads = {user: read_id for user, (read_id, _) in positions.items()}
                return receipts_sql.count_readers(ids, joined, senders, reads)

            # Read positions are kept with each member's inbox.
            await conns.release()
            by_database: dict[int, list[UserId]] = {}
            for member in members:
                by_database.setdefault(self._database_of(member), []).append(member)
            await conns.get_many(by_database)
            read_ids: dict[UserId, MessageId] = {}
            for database, users in by_database.items():
                conn = await conns.get(database)
                read_ids |= await conversations_sql.select_read_ids(
                    conn, group_id, users
                )
            return receipts_sql.count_readers(ids, members, senders, read_ids)

        return await self._run("group_read_counts", work)

    # Changes to messages.

    async def get_message(
        self, message_id: MessageId, viewer: UserId
    ) -> HeldMessage | None:
        if not (_fits_int64(message_id) and _fits_int64(viewer)):
            return None

        async def work(conns: ConnectionSet) -> HeldMessage | None:
            conn = await conns.get(self._database_of(viewer))
            held = await recall_sql.select_held(conn, message_id, viewer)
            if held is not None:
                return held
            # A large group's message is in its group's timeline only.
            await conns.release()
            await conns.get_all()
            return await timeline_ops.held_in_timeline(
                conns, len(self.shard_map.dsns), message_id, viewer
            )

        return await self._run("get_message", work)

    async def recall_message(
        self, actor: UserId, message_id: MessageId, now: int
    ) -> ChangeResult:
        _check_int64(actor=actor, message_id=message_id, now=now)
        return await self._run(
            "recall_message",
            lambda conns: self._change_for_everyone(
                conns, actor, message_id, CHANGE_RECALL, b"", now
            ),
            all_databases=True,
        )

    async def edit_message(
        self, actor: UserId, message_id: MessageId, body: bytes, now: int
    ) -> ChangeResult:
        _check_int64(actor=actor, message_id=message_id, now=now)
        return await self._run(
            "edit_message",
            lambda conns: self._change_for_everyone(
                conns, actor, message_id, CHANGE_EDIT, body, now
            ),
            all_databases=True,
        )

    async def _change_for_everyone(
        self,
        conns: ConnectionSet,
        actor: UserId,
        message_id: MessageId,
        kind: int,
        body: bytes,
        now: int,
    ) -> ChangeResult:
        """Recall or edit a message: in its timeline for a large group's
        message, otherwise in every inbox copy."""
        databases = len(self.shard_map.dsns)
        held = await timeline_ops.held_in_timeline(conns, databases, message_id, actor)
        if held is None:
            return await recall_sql.change_for_everyone(
                self._copies, conns, actor, message_id, kind, body, now
            )
        group_id = held.message.group_id
        assert group_id is not None
        async with self._group_locked(conns, group_id) as conn:
            return await timeline_ops.change_in_timeline(
                conns, conn, actor, held, kind, body, now
            )

    async def delete_message_for(
        self, user_id: UserId, message_id: MessageId, now: int
    ) -> ChangeResult:
        _check_int64(user_id=user_id, message_id=message_id, now=now)

        async def work(conns: ConnectionSet) -> ChangeResult:
            user_db = self._database_of(user_id)
            await conns.get_many([0, user_db])
            if (
                await recall_sql.select_held(
                    await conns.get(user_db), message_id, user_id
                )
                is None
            ):
                await conns.release()
                await conns.get_all()
                databases = len(self.shard_map.dsns)
                held = await timeline_ops.held_in_timeline(
                    conns, databases, message_id, user_id
                )
                if held is not None:
                    group_db = self._database_of(held.message.group_id or GroupId(0))
                    return await timeline_ops.delete_in_timeline(
                        conns, group_db, user_db, user_id, held, now
                    )
            return await recall_sql.delete_for(
                await conns.get(user_db), await conns.get(0), user_id, message_id, now
            )

        return await self._run("delete_message_for", work)

    async def inbox_seqs(
        self, user_id: UserId, message_ids: Sequence[MessageId]
    ) -> dict[MessageId, Seq]:
        if not _fits_int64(user_id):
            return {}
        ids = list(dict.fromkeys(m for m in message_ids if _fits_int64(m)))
        if not ids:
            return {}

        async def work(conns: ConnectionSet) -> dict[MessageId, Seq]:
            conn = await conns.get(self._database_of(user_id))
            return await inbox_sql.select_inbox_seqs(conn, user_id, ids)

        return await self._run("inbox_seqs", work)

    # Peers and presence.

    async def peers_among(
        self, user_id: UserId, candidates: Sequence[UserId]
    ) -> set[UserId]:
        if not _fits_int64(user_id):
            return set()
        users = [
            u for u in dict.fromkeys(candidates) if _fits_int64(u) and u != user_id
        ]
        if not users:
            return set()

        async def work(conns: ConnectionSet) -> set[UserId]:
            # Contacts are kept with the user's inbox, and memberships with
            # each group, so every database is asked about groups.
            await conns.get_all()
            user_conn = await conns.get(self._database_of(user_id))
            peers = await peers_sql.select_mutual_contacts(user_conn, user_id, users)
            for database in range(len(self.shard_map.dsns)):
                rest = [user for user in users if user not in peers]
                if not rest:
                    break
                conn = await conns.get(database)
                peers |= await peers_sql.select_group_peers(conn, user_id, rest)
            return peers

        return await self._run("peers_among", work)

    async def set_last_seen(self, user_id: UserId, seen_at: int) -> None:
        _check_int64(user_id=user_id, seen_at=seen_at)

        async def work(conns: ConnectionSet) -> None:
            conn = await conns.get(self._database_of(user_id))
            await peers_sql.raise_last_seen(conn, user_id, seen_at)

        await self._run("set_last_seen", work)

    async def last_seen(self, user_ids: Sequence[UserId]) -> dict[UserId, int]:
        by_database: dict[int, list[UserId]] = {}
        for user in dict.fromkeys(user_ids):
            if _fits_int64(user):
                by_database.setdefault(self._database_of(user), []).append(user)
        if not by_database:
            return {}

        async def work(conns: ConnectionSet) -> dict[UserId, int]:
            await conns.get_many(by_database)
            seen: dict[UserId, int] = {}
            for database, users in by_database.items():
                conn = await conns.get(database)
                seen |= await peers_sql.select_last_seen(conn, users)
            return seen

        return await self._run("last_seen", work)

    # Search.

    async def search_messages(
        self,
        user_id: UserId,
        terms: Sequence[str],
        before_id: MessageId | None,
        limit: int,
        *,
        peer_id: UserId | None = None,
        group_id: GroupId | None = None,
    ) -> tuple[list[InboxEntry], bool]:
        _check_limit(limit)
        if not terms:
            raise ValueError("search_messages needs at least one term")
        if not all(
            _fits_int64(value) for value in (user_id, peer_id or 0, group_id or 0)
        ):
            return [], False
        before_id = _clamp_before_id(before_id)
        if before_id is not None and before_id < _INT64_MIN:
            return [], False
        search = search_sql.Search(
            user_id,
            tuple(terms),
            before_id,
            min(limit, _INT64_MAX - 1),
            peer_id,
            group_id,
        )

        async def work(conns: ConnectionSet) -> tuple[list[InboxEntry], bool]:
            conn = await conns.get(self._database_of(user_id))
            return await search_sql.select_matches(conn, search)

        return await self._run("search_messages", work)

    # Groups.

    async def create_group(
        self,
        name: str,
        creator: UserId,
        members: Sequence[UserId],
        now: int,
        *,
        max_members: int,
        notice: GroupNotice | None = None,
        timeline_above: int | None = None,
        history: int | None = 0,
    ) -> GroupChange:
        _check_int64(creator=creator, now=now)
        _check_int64_each("member", members)
        others = [user for user in dict.fromkeys(members) if user != creator]

        async def work(conns: ConnectionSet) -> GroupChange:
            group_id = GroupId(
                await (await conns.get(0)).fetchval("SELECT nextval('group_ids')")
            )

            async def change(conn: Connection) -> _Membership:
                size = 1 + len(others)
                if size > max_members:
                    raise GroupFull(group_id, size, max_members)
                group = await groups_sql.insert_group(
                    conn, group_id, name, creator, now
                )
                roles = [(creator, Role.OWNER)] + [(u, Role.MEMBER) for u in others]
                joined = await groups_sql.insert_members(conn, group_id, roles, now)
                group = await timeline_ops.switch_if_large(
                    conn, group, size, timeline_above
                )
                users = (creator, *others)
                return _Membership(group, dict.fromkeys(users, joined), users)

            return await self._change_group(
                conns, "create_group", group_id, change, notice, history
            )

        return await self._run("create_group", work, all_databases=True)

    async def get_group(self, group_id: GroupId) -> Group | None:
        if not _fits_int64(group_id):
            return None

        async def work(conns: ConnectionSet) -> Group | None:
            conn = await conns.get(self._database_of(group_id))
            return await groups_sql.select_group(conn, group_id)

        return await self._run("get_group", work)

    async def count_groups(self) -> int:
        # Each group lives in the database of its shard.
        async def work(conns: ConnectionSet) -> int:
            total = 0
            for index in range(len(self._pools)):
                conn = await conns.get(index)
                total += int(await conn.fetchval("SELECT count(*) FROM groups"))
            return total

        return await self._run("count_groups", work)

    async def list_members(self, group_id: GroupId) -> list[Member]:
        if not _fits_int64(group_id):
            return []

        async def work(conns: ConnectionSet) -> list[Member]:
            conn = await conns.get(self._database_of(group_id))
            return await groups_sql.select_members(conn, group_id)

        return await self._run("list_members", work)

    async def groups_of(self, user_id: UserId) -> list[Group]:
        if not _fits_int64(user_id):
            return []

        async def work(conns: ConnectionSet) -> list[Group]:
            # Memberships are kept with their group, so every database is asked.
            found: list[Group] = []
            for database in range(len(self.shard_map.dsns)):
                conn = await conns.get(database)
                found += await groups_sql.select_groups_of(conn, user_id)
            return sorted(found, key=lambda group: group.id)

        return await self._run("groups_of", work)

    async def add_members(
        self,
        group_id: GroupId,
        user_ids: Sequence[UserId],
        role: Role,
        now: int,
        *,
        max_members: int,
        notice: GroupNotice | None = None,
        timeline_above: int | None = None,
        history: int | None = 0,
    ) -> GroupChange:
        _check_int64(group_id=group_id, now=now)
        _check_int64_each("user id", user_ids)
        users = list(dict.fromkeys(user_ids))

        async def change(conn: Connection) -> _Membership:
            group = await groups_sql.require_group(conn, group_id)
            current = await groups_sql.select_member_joins(conn, group_id)
            for user_id in users:
                if user_id in current:
                    raise AlreadyMember(group_id, user_id)
            size = len(current) + len(users)
            if size > max_members:
                raise GroupFull(group_id, size, max_members)

            joined = await groups_sql.insert_members(
                conn, group_id, [(user, role) for user in users], now
            )
            group = await timeline_ops.switch_if_large(
                conn, group, size, timeline_above
            )
            recipients = current | dict.fromkeys(users, joined)
            return _Membership(group, recipients, tuple(users))

        return await self._run(
            "add_members",
            lambda conns: self._change_group(
                conns, "add_members", group_id, change, notice, history
            ),
            all_databases=True,
        )

    async def remove_member(
        self,
        group_id: GroupId,
        user_id: UserId,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        _check_int64(group_id=group_id, user_id=user_id)

        async def change(conn: Connection) -> _Membership:
            group = await groups_sql.require_group(conn, group_id)
            current = await groups_sql.select_member_joins(conn, group_id)
            if user_id not in current:
                raise NotMember(group_id, user_id)
            # The notice goes to the members before the removal, so the
            # removed member gets it as its last message of the group.
            await groups_sql.delete_member(conn, group_id, user_id)
            return _Membership(group, current)

        return await self._run(
            "remove_member",
            lambda conns: self._change_group(
                conns, "remove_member", group_id, change, notice
            ),
            all_databases=True,
        )

    async def set_role(
        self,
        group_id: GroupId,
        user_id: UserId,
        role: Role,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        _check_int64(group_id=group_id, user_id=user_id)

        async def change(conn: Connection) -> _Membership:
            group = await groups_sql.require_group(conn, group_id)
            if not await groups_sql.update_role(conn, group_id, user_id, role):
                raise NotMember(group_id, user_id)
            return _Membership(
                group, await groups_sql.select_member_joins(conn, group_id)
            )

        return await self._run(
            "set_role",
            lambda conns: self._change_group(
                conns, "set_role", group_id, change, notice
            ),
            all_databases=True,
        )

    async def rename_group(
        self,
        group_id: GroupId,
        name: str,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        _check_int64(group_id=group_id)

        async def change(conn: Connection) -> _Membership:
            group = await groups_sql.rename_group(conn, group_id, name)
            return _Membership(
                group, await groups_sql.select_member_joins(conn, group_id)
            )

        return await self._run(
            "rename_group",
            lambda conns: self._change_group(
                conns, "rename_group", group_id, change, notice
            ),
            all_databases=True,
        )

    @contextlib.asynccontextmanager
    async def _group_locked(
        self, conns: ConnectionSet, group_id: GroupId
    ) -> AsyncIterator[Connection]:
        """Hold the group's lock; yield the connection to the group's database."""
        conn = await conns.get(self._database_of(group_id))
        await groups_sql.lock_group(conn, group_id)
        try:
            yield conn
        finally:
            await groups_sql.unlock_group(conn, group_id)

    async def _change_group(
        self,
        conns: ConnectionSet,
        name: str,
        group_id: GroupId,
        change: Callable[[Connection], Awaitable[_Membership]],
        notice: GroupNotice | None,
        history: int | None = 0,
    ) -> GroupChange:
        """Apply a membership or group change and its notice in one transaction.

        ``change`` runs in the group's database and returns the group after
        the change, the members who get the notice and the users who joined.
        The notice's copies start the read positions of those who joined.
        Without a notice, their conversation rows are written directly. A
        group in ``"read"`` mode gets the notice in its timeline instead.
        """
        group_db = self._database_of(group_id)
        async with self._group_locked(conns, group_id) as conn:

            async def apply() -> tuple[_Membership, Stored | GroupAppendResult | None]:
                membership = await change(conn)
                if membership.group.mode == GROUP_MODE_READ:
                    timeline = await timeline_ops.change_timeline(
                        conns,
                        conn,
                        len(self.shard_map.dsns),
                        membership.group.id,
                        membership.recipients,
                        notice,
                        history,
                    )
                    return membership, timeline
                if notice is None:
                    await self._join(conn, group_db, group_id, membership)
                    return membership, None
                if notice.actor not in membership.recipients:
                    raise NotMember(group_id, notice.actor)
                message = OutgoingMessage(
                    id=await inbox_sql.next_message_id(await conns.get(0)),
                    sender=notice.actor,
                    recipient=None,
                    group_id=group_id,
                    content_type=notice.content_type,
                    body=notice.body(group_id),
                    sent_at=notice.sent_at,
                    notice=True,
                )
                stored = await self._copies.store_copies(
                    conn,
                    group_db,
                    message,
                    list(membership.recipients),
                    group_id,
                    membership.recipients,
                )
                return membership, stored

            membership, stored = await transact(conn, name, apply)
            if isinstance(stored, GroupAppendResult):
                return GroupChange(membership.group, stored)
            if stored is None and membership.group.mode == GROUP_MODE_READ:
                return GroupChange(membership.group, None)
            if stored is None:
                await self._join_elsewhere(conns, group_db, group_id, membership)
                return GroupChange(membership.group, None)
            copies = await self._copies.finish(conns, group_db, stored)
            return GroupChange(
                membership.group, _group_append_result(stored.message, copies)
            )

    async def _join(
        self,
        conn: Connection,
        database: int,
        group_id: GroupId,
        membership: _Membership,
    ) -> None:
        """Start the read positions of the joined users whose rows are in
        ``database``, in the transaction open on ``conn``."""
        joined = {
            user: membership.recipients[user]
            for user in membership.joined
            if self._database_of(user) == database
        }
        if joined:
            await conversations_sql.lock_heads(conn, list(joined))
            await conversations_sql.join_conversations(conn, group_id, joined)

    async def _join_elsewhere(
        self,
        conns: ConnectionSet,
        group_db: int,
        group_id: GroupId,
        membership: _Membership,
    ) -> None:
        """Start the read positions of joined users outside the group's database.

        If this fails, the copies of the next group message start them,
        because they carry each member's joined_id too.
        """
        databases = {self._database_of(user) for user in membership.joined}
        for database in sorted(databases - {group_db}):
            conn = await conns.get(database)
            join = functools.partial(self._join, conn, database, group_id, membership)
            await transact(conn, "join_group", join)

    async def append_group_message(
        self,
        sender: UserId,
        device: DeviceId,
        client_id: ClientMessageId,
        group_id: GroupId,
        content_type: int,
        body: bytes,
        sent_at: int,
        mentions: Sequence[UserId] = (),
    ) -> GroupAppendResult:
        _check_int64(
            sender=sender,
            group_id=group_id,
            content_type=content_type,
            sent_at=sent_at,
        )
        _check_int64_each("mention", mentions)
        _check_non_negative_int64(client_id=client_id)
        message = OutgoingMessage(
            id=MessageId(0),  # allocated under the group's lock
            sender=sender,
            recipient=None,
            group_id=group_id,
            content_type=content_type,
            body=body,
            sent_at=sent_at,
            mentions=tuple(mentions),
            origin=(device, client_id),
        )
        return await self._run(
            "append_group_message",
            lambda conns: self._append_to_group(conns, message),
            all_databases=True,
        )

    async def _append_to_group(
        self, conns: ConnectionSet, draft: OutgoingMessage
    ) -> GroupAppendResult:
        assert draft.origin is not None and draft.group_id is not None
        device, client_id = draft.origin
        group_id = draft.group_id
        origin_db = self._database_of(draft.sender)
        origin = await conns.get(origin_db)

        # A resend is a duplicate even if the sender has left the group since.
        first = await inbox_sql.find_first_copy(origin, draft.sender, device, client_id)
        if first is not None:
            return await self._repeat_group(conns, origin_db, first)

        async with self._group_locked(conns, group_id) as group_conn:
            # The lock keeps the membership as read here until the copies are
            # written, because every membership change takes it too.
            group = await groups_sql.require_group(group_conn, group_id)
            members = await groups_sql.select_member_joins(group_conn, group_id)
            if group.mode == GROUP_MODE_READ:
                return await timeline_ops.append_to_timeline(
                    conns, group_conn, origin_db, draft, members
                )
            _check_group_message(group_id, draft, members)

            async def store() -> FirstCopy | Stored:
                first = await inbox_sql.find_first_copy(
                    origin, draft.sender, device, client_id
                )
                if first is not None:
                    return first
                message_id = await inbox_sql.next_message_id(await conns.get(0))
                message = _with_id(draft, message_id)
                stored = await self._copies.store_copies(
                    origin, origin_db, message, list(members), group_id, members
                )
                await inbox_sql.raise_last_client_id(
                    origin, draft.sender, device, client_id
                )
                return stored

            stored = await transact(origin, "append_group_message", store)
            if isinstance(stored, FirstCopy):
                return await self._repeat_group(conns, origin_db, stored)
            copies = await self._copies.finish(conns, origin_db, stored)
            return _group_append_result(stored.message, copies)

    async def _repeat_group(
        self, conns: ConnectionSet, origin_db: int, first: FirstCopy
    ) -> GroupAppendResult:
        await self._copies.relay(conns, origin_db, first.message.id)
        sender = first.message.sender
        return GroupAppendResult(
            message=first.current,
            seqs={sender: first.sender_seq},
            duplicate=True,
        )

    async def read_group_history(
        self,
        group_id: GroupId,
        before_id: MessageId | None,
        limit: int,
        *,
        viewer: UserId | None = None,
    ) -> tuple[list[StoredMessage], bool]:
        _check_limit(limit)
        if not _fits_int64(group_id):
            return [], False
        if viewer is not None and not _fits_int64(viewer):
            viewer = None  # no such user, so nothing is deleted for them
        before_id = _clamp_before_id(before_id)
        if before_id is not None and before_id < _INT64_MIN:
            return [], False
        limit = min(limit, _INT64_MAX - 1)

        async def work(conns: ConnectionSet) -> tuple[list[StoredMessage], bool]:
            group_db = self._database_of(group_id)
            if viewer is None:
                hidden = None
            else:
                # The viewer's deletions are kept with the viewer's inbox.
                viewer_db = self._database_of(viewer)
                await conns.get_many([group_db, viewer_db])
                viewer_conn = await conns.get(viewer_db)
                group_conn = await conns.get(group_db)
                hidden = functools.partial(
                    _hidden_ids, viewer_conn, group_conn, group_id, viewer
                )
            return await groups_sql.select_group_history(
                await conns.get(group_db), group_id, before_id, limit, hidden
            )

        return await self._run("read_group_history", work)

    # Group timelines.

    async def read_timeline(
        self, group_id: GroupId, user_id: UserId, after_seq: Seq, limit: int
    ) -> TimelinePage:
        _check_limit(limit)
        _check_int64(group_id=group_id, user_id=user_id)
        after = min(after_seq, _INT64_MAX)
        limit = min(limit, _INT64_MAX - 1)

        async def work(conns: ConnectionSet) -> TimelinePage:
            conn = await conns.get(self._database_of(group_id))
            await groups_sql.require_group(conn, group_id)
            return await timeline_sql.select_timeline_page(
                conn, group_id, user_id, after, limit
            )

        return await self._run("read_timeline", work)

    async def timelines_of(self, user_id: UserId) -> list[TimelineState]:
        if not _fits_int64(user_id):
            return []

        async def work(conns: ConnectionSet) -> list[TimelineState]:
            # Timeline access is kept with its group, so every database is asked.
            found: list[TimelineState] = []
            for database in range(len(self.shard_map.dsns)):
                conn = await conns.get(database)
                found += await timeline_sql.select_timelines_of(conn, user_id)
            return sorted(found, key=lambda state: state.group.id)

        return await self._run("timelines_of", work)

    async def mark_timeline_read(
        self, user_id: UserId, group_id: GroupId, up_to: MessageId | None, now: int
    ) -> ReadResult:
        _check_int64(user_id=user_id, group_id=group_id, now=now)
        if up_to is not None:
            up_to = MessageId(max(_INT64_MIN, min(up_to, _INT64_MAX)))

        async def work(conns: ConnectionSet) -> ReadResult:
            group_db = self._database_of(group_id)
            await conns.get_many([0, group_db, self._database_of(user_id)])
            conn = await conns.get(group_db)
            await groups_sql.require_group(conn, group_id)
            result, moved = await transact(
                conn,
                "mark_timeline_read",
                lambda: timeline_sql.mark_timeline_read(conn, user_id, group_id, up_to),
            )
            if not moved:
                return result
            # The read entry goes to the reader's inbox, in its own database.
            # NOTE: if this fails after the move committed, the other devices
            # learn the position from the next conversation list only.
            change = OutgoingMessage(
                id=await inbox_sql.next_message_id(await conns.get(0)),
                sender=user_id,
                recipient=None,
                group_id=group_id,
                content_type=0,
                body=b"",
                sent_at=now,
                change=CHANGE_READ,
                target=result.read_id,
            )
            user_conn = await conns.get(self._database_of(user_id))

            async def append() -> Seq:
                seqs = await inbox_sql.allocate_seqs(user_conn, [user_id])
                unread = {user_id: result.unread}
                await inbox_sql.insert_copies(user_conn, change, seqs, unread)
                return seqs[user_id]

            seq = await transact(user_conn, "mark_timeline_read", append)
            entry = InboxEntry(seq, change.stored(), result.unread)
            return dataclasses.replace(result, entry=entry)

        return await self._run("mark_timeline_read", work)

    # Relaying copies to other databases.

    async def _relay_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._relay_interval_s)
            try:
                await self._run("relay", self._copies.relay_pending, all_databases=True)
            except StoreError as exc:
                logger.warning(
                    "relay pass failed, next in %ss: %s", self._relay_interval_s, exc
                )
            except Exception:
                logger.exception(
                    "relay pass crashed; next in %ss", self._relay_interval_s
                )


async def _hidden_ids(
    viewer_conn: Connection,
    group_conn: Connection,
    group_id: GroupId,
    viewer: UserId,
    message_ids: list[MessageId],
) -> set[MessageId]:
    """Return the ids the viewer deleted for themselves: inbox copies, in the
    viewer's database, and timeline messages, in the group's."""
    hidden = await inbox_sql.select_deleted_ids(viewer_conn, viewer, message_ids)
    return hidden | await timeline_sql.select_deleted_ids(
        group_conn, group_id, viewer, message_ids
    )


def _with_id(draft: OutgoingMessage, message_id: MessageId) -> OutgoingMessage:
    return OutgoingMessage(
        id=message_id,
        sender=draft.sender,
        recipient=draft.recipient,
        group_id=draft.group_id,
        content_type=draft.content_type,
        body=draft.body,
        sent_at=draft.sent_at,
        mentions=draft.mentions,
        origin=draft.origin,
    )


def _group_append_result(
    message: OutgoingMessage, copies: dict[UserId, AppendedCopy]
) -> GroupAppendResult:
    return GroupAppendResult(
        message=message.stored(),
        seqs={user: copy.seq for user, copy in copies.items()},
        duplicate=False,
        unread={user: copy.unread for user, copy in copies.items()},
    )


def _check_group_message(
    group_id: GroupId, message: OutgoingMessage, members: Collection[UserId]
) -> None:
    member_set = set(members)
    if message.sender not in member_set:
        raise NotMember(group_id, message.sender)
    for user_id in message.mentions:
        if user_id not in member_set:
            raise InvalidMention(group_id, user_id)


# Input checks.


def _fits_int64(value: int) -> bool:
    return _INT64_MIN <= value <= _INT64_MAX


def _clamp_before_id(before_id: MessageId | None) -> MessageId | None:
    if before_id is not None and before_id > _INT64_MAX:
        return None  # every stored id is below it
    return before_id


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"invalid limit {limit}: must not be negative")


def _check_int64(**values: int) -> None:
    """Raise ValueError for a value outside PostgreSQL's bigint range."""
    for name, value in values.items():
        if not _fits_int64(value):
            raise ValueError(
                f"invalid {name} {value}: a PostgreSQL bigint is an integer from "
                f"{_INT64_MIN} to {_INT64_MAX}"
            )


def _check_int64_each(name: str, values: Sequence[int]) -> None:
    for value in values:
        _check_int64(**{name: value})


def _check_non_negative_int64(**values: int) -> None:
    for name, value in values.items():
        if not 0 <= value <= _INT64_MAX:
            raise ValueError(
                f"invalid {name} {value}: expected an integer from 0 to {_INT64_MAX}"
            )


def _session_from_record(row: asyncpg.Record) -> Session:
    return Session(
        token_hash=row["token_hash"],
        user_id=UserId(row["user_id"]),
        device=DeviceId(row["device"]),
        platform=row["platform"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )
