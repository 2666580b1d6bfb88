"""SQLite implementation of the Store interface, with group commit.

One writer thread owns the write connection. It takes every write queued since
its last commit, applies the batch in one transaction and commits once, so a
burst of writes costs one commit (and with ``synchronous="full"`` one fsync)
instead of one each. A second connection on a reader thread serves reads; WAL
mode lets them run while a batch is written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import json
import logging
import pathlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from switchboard.ids import (
    ClientMessageId,
    DeviceId,
    GroupId,
    MessageId,
    Seq,
    UserId,
)
from switchboard.store import (
    sqlite_inbox,
    sqlite_peers,
    sqlite_search,
    sqlite_timeline,
)
from switchboard.store.base import (
    AlreadyMember,
    AppendResult,
    ChangeResult,
    ConnectState,
    ConversationKey,
    ConversationPage,
    DeviceState,
    Group,
    GroupAppendResult,
    GroupChange,
    GroupFull,
    GroupNotFound,
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
from switchboard.store.migrations import migrate
from switchboard.store.sqlite_checkpoint import (
    WRITER_AUTOCHECKPOINT_PAGES,
    Checkpointer,
)
from switchboard.store.sqlite_conversations import (
    join_group,
    select_conversation_page,
    touch_conversation,
)
from switchboard.store.sqlite_recall import (
    delete_message_for,
    edit_message,
    recall_message,
    select_held_message,
)
from switchboard.store.sqlite_receipts import mark_read, select_read_counts
from switchboard.store.sqlite_rows import (
    MESSAGE_COLUMN_COUNT,
    MESSAGE_COLUMNS,
    message_from_row,
    next_seq,
    read_transaction,
    rollback,
)

__all__ = ["SqliteStore"]

logger = logging.getLogger("switchboard.store")

_T = TypeVar("_T")

_SYNCHRONOUS_PRAGMAS: Final = {"normal": "NORMAL", "full": "FULL"}

_BUSY_TIMEOUT_S: Final = 5.0
"""Maximum time a connection waits for a lock held by another process."""

_MIN_SQLITE_VERSION: Final = (3, 35, 0)
"""First SQLite release with RETURNING, which the writes use."""

_NEW_FILE_PAGE_SIZE: Final = 2048
"""Page size in bytes of a new database file. Against SQLite's 4,096 it
halves the bytes a one-message commit writes to the WAL (about 53 KB to
27 KB) and cut CPU per append by a fifth in benchmarks/store_append.py."""

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


class _State(enum.Enum):
    """Lifecycle stage of a SqliteStore."""

    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class SqliteStore(Store):
    """Store kept in one SQLite file, for a single-process deployment.

    ``synchronous`` sets the durability of a committed (acknowledged) write:

    ``"normal"``
        WAL with ``PRAGMA synchronous=NORMAL``. A commit writes the WAL but
        does not fsync it, so committed writes survive a crash or SIGKILL of
        the process but the latest ones may be lost on power loss or an OS
        crash. The file stays consistent either way.
    ``"full"``
        WAL with ``PRAGMA synchronous=FULL``. Every commit fsyncs the WAL, so
        committed writes also survive power loss, on storage that honours
        fsync. Each commit costs one fsync, shared by the whole batch.

    ``batch_max`` is the maximum number of writes committed in one
    transaction.

    Writes raise ValueError for an integer outside SQLite's signed 64-bit
    INTEGER range, and for a negative client id or cursor. Reads treat an id
    or sequence outside that range as absent, and raise ValueError for a
    negative limit. Cancelling a caller that awaits a write does not cancel
    the write. Call the store from event loop threads only.
    """

    def __init__(
        self,
        path: pathlib.Path,
        *,
        synchronous: str = "normal",
        batch_max: int = 512,
    ) -> None:
        if synchronous not in _SYNCHRONOUS_PRAGMAS:
            allowed = ", ".join(repr(mode) for mode in _SYNCHRONOUS_PRAGMAS)
            raise ValueError(
                f"invalid synchronous mode {synchronous!r}: expected one of {allowed}"
            )
        if batch_max < 1:
            raise ValueError(f"invalid batch_max {batch_max}: must be at least 1")

        self.path = path
        self.synchronous = synchronous
        self._writer = _Writer(path, _SYNCHRONOUS_PRAGMAS[synchronous], batch_max)
        self._reader: concurrent.futures.ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None
        """Read connection; used only on the reader thread."""
        self._state = _State.NEW
        self._state_lock = threading.Lock()
        """Orders a write's queueing against close() queueing the stop."""
        self._lifecycle_lock = asyncio.Lock()

    async def synchronous_pragma(self) -> int:
        """Return ``PRAGMA synchronous`` of the write connection: 1 for NORMAL,
        2 for FULL, as SQLite reports it."""

        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA synchronous").fetchone()[0])

        return await self._write("synchronous_pragma", read)

    @property
    def commits(self) -> int:
        """Number of write transactions committed since open()."""
        return self._writer.commits

    # Lifecycle.

    async def open(self) -> None:
        async with self._lifecycle_lock:
            if self._state is not _State.NEW:
                raise StoreError(
                    f"SQLite store {self.path} is {self._state.value}; "
                    "open() may be called once, on a new store"
                )

            try:
                schema_version = await self._start_threads()
            except BaseException as exc:
                await self._stop_threads()
                self._state = _State.CLOSED
                logger.error("failed to open SQLite store %s: %s", self.path, exc)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(
                        f"failed to open SQLite store {self.path}: {exc}"
                    ) from exc
                raise

            self._state = _State.OPEN
            logger.info(
                "opened SQLite store %s: schema version %d, synchronous=%s"
                " (PRAGMA synchronous=%d)",
                self.path,
                schema_version,
                self.synchronous,
                await self.synchronous_pragma(),
            )

    async def close(self) -> None:
        """Commit queued writes, stop both threads and close the connections.

        Calling close() again, or on a store never opened, does nothing.
        """
        async with self._lifecycle_lock:
            if self._state is not _State.OPEN:
                self._state = _State.CLOSED
                return

            with self._state_lock:
                self._state = _State.CLOSING
            await self._stop_threads()
            self._state = _State.CLOSED
            logger.info(
                "closed SQLite store %s after %d commits", self.path, self.commits
            )

    async def _start_threads(self) -> int:
        """Start the writer (which migrates) and the reader; return the version."""
        _, schema_version = await asyncio.wrap_future(self._writer.start())

        loop = asyncio.get_running_loop()
        self._reader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="switchboard-store-reader"
        )
        await loop.run_in_executor(self._reader, self._connect_reader)
        return schema_version

    async def _stop_threads(self) -> None:
        await asyncio.wrap_future(self._writer.stop())

        if self._reader is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._reader, self._close_reader)
            # The worker is idle now, so this join returns at once.
            self._reader.shutdown(wait=True)
            self._reader = None

    def _connect_reader(self) -> None:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        self._read_conn = conn

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    def _raise_unless_open(self) -> None:
        if self._state is _State.OPEN:
            return
        if self._state is _State.NEW:
            raise StoreError(f"SQLite store {self.path} is not open; call open() first")
        raise StoreError(f"SQLite store {self.path} is closed")

    # Writes and reads.

    async def _write(self, name: str, apply: Callable[[sqlite3.Connection], _T]) -> _T:
        """Queue ``apply`` for the writer and return its result once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        with self._state_lock:
            self._raise_unless_open()
            self._writer.put(_WriteOp(name, apply, loop, future))
        return await future

    async def _read(self, apply: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``apply`` on the reader thread's connection."""
        self._raise_unless_open()
        assert self._reader is not None
        # The reader thread settles this future with call_soon_threadsafe.
        # run_in_executor would chain it to a concurrent future in a reference
        # cycle, which stays in memory until the garbage collector runs.
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._reader.submit(self._run_read, apply, future)
        return await future

    def _run_read(
        self, apply: Callable[[sqlite3.Connection], _T], future: asyncio.Future[_T]
    ) -> None:
        assert self._read_conn is not None, "reader connection used before open()"
        loop = future.get_loop()
        try:
            result = apply(self._read_conn)
        except sqlite3.Error as exc:
            logger.warning("read from SQLite store %s failed: %s", self.path, exc)
            error = StoreError(f"read from SQLite store failed: {exc}")
            error.__cause__ = exc
            loop.call_soon_threadsafe(_settle_read_error, future, error)
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle_read_error, future, exc)
        else:
            loop.call_soon_threadsafe(_settle_read, future, result)

    # Accounts.

    async def create_user(self, name: str, password_hash: str, now: int) -> User:
        _check_int64(now=now)
        return await self._write(
            "create_user", lambda conn: _insert_user(conn, name, password_hash, now)
        )

    async def get_user(self, user_id: UserId) -> User | None:
        if not _fits_int64(user_id):
            return None
        return await self._read(lambda conn: _select_user(conn, "id", user_id))

    async def get_user_by_name(self, name: str) -> User | None:
        return await self._read(lambda conn: _select_user(conn, "name", name))

    async def count_users(self) -> int:
        return await self._read(lambda conn: _count_rows(conn, "users"))

    # Sessions.

    async def create_session(self, session: Session) -> None:
        _check_int64(
            user_id=session.user_id,
            platform=session.platform,
            created_at=session.created_at,
            expires_at=session.expires_at,
        )
        await self._write("create_session", lambda conn: _insert_session(conn, session))

    async def get_session(self, token_hash: bytes) -> Session | None:
        return await self._read(lambda conn: _select_session(conn, token_hash))

    async def delete_session(self, token_hash: bytes) -> Session | None:
        return await self._write(
            "delete_session", lambda conn: _delete_session(conn, token_hash)
        )

    async def change_password(
        self, user_id: UserId, password_hash: str, keep_token_hash: bytes
    ) -> list[Session]:
        _check_int64(user_id=user_id)
        return await self._write(
            "change_password",
            lambda conn: _change_password(
                conn, user_id, password_hash, keep_token_hash
            ),
        )

    async def find_in_bodies(
        self, user_id: UserId, content_type: int, needle: bytes, limit: int
    ) -> list[tuple[UserId, bytes]]:
        if not _fits_int64(user_id):
            return []
        return await self._read(
            lambda conn: sqlite_inbox.select_bodies_containing(
                conn, user_id, content_type, needle, limit
            )
        )

    # Devices.

    async def get_device(self, user_id: UserId, device: DeviceId) -> DeviceState:
        if not _fits_int64(user_id):
            return DeviceState(cursor=Seq(0), last_client_id=ClientMessageId(0))
        return await self._read(lambda conn: _select_device(conn, user_id, device))

    async def read_connect_state(
        self, user_id: UserId, device: DeviceId, after_seq: Seq, limit: int
    ) -> ConnectState:
        # One hop to the reader thread instead of three: a reconnect storm
        # spent a quarter of its CPU on the reader thread.
        _check_limit(limit)
        if not _fits_int64(user_id):
            return await super().read_connect_state(user_id, device, after_seq, limit)
        after_seq, limit = _clamp_page(after_seq, limit)

        def read(conn: sqlite3.Connection) -> ConnectState:
            page = _select_inbox_page(conn, user_id, after_seq, limit)
            state = _select_device(conn, user_id, device)
            timelines = sqlite_timeline.select_timelines_of(conn, user_id)
            return ConnectState(page, state, timelines)

        return await self._read(read)

    async def set_cursor(self, user_id: UserId, device: DeviceId, seq: Seq) -> None:
        _check_int64(user_id=user_id)
        _check_non_negative_int64(seq=seq)
        await self._write(
            "set_cursor", lambda conn: _raise_cursor(conn, user_id, device, seq)
        )

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
        message = _NewMessage(
            sender, device, client_id, recipient, content_type, body, sent_at
        )
        return await self._write(
            "append_message", lambda conn: _append_message(conn, message)
        )

    async def read_inbox(
        self, user_id: UserId, after_seq: Seq, limit: int
    ) -> InboxPage:
        _check_limit(limit)
        if not _fits_int64(user_id):
            return InboxPage(entries=[], has_more=False, head_seq=Seq(0))
        after_seq, limit = _clamp_page(after_seq, limit)
        return await self._read(
            lambda conn: _select_inbox_page(conn, user_id, after_seq, limit)
        )

    async def head_seq(self, user_id: UserId) -> Seq:
        if not _fits_int64(user_id):
            return Seq(0)
        return await self._read(lambda conn: _select_head_seq(conn, user_id))

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
        if before_id is not None and before_id > _INT64_MAX:
            before_id = None  # every stored id is below it
        if before_id is not None and before_id < _INT64_MIN:
            return [], False
        limit = min(limit, _INT64_MAX - 1)
        return await self._read(
            lambda conn: _select_conversation_page(
                conn, user_id, peer_id, before_id, limit
            )
        )

    # Conversations.

    async def list_conversations(
        self, user_id: UserId, before_id: MessageId | None, limit: int
    ) -> ConversationPage:
        _check_limit(limit)
        if not _fits_int64(user_id):
            return ConversationPage([], has_more=False, head_seq=Seq(0), total_unread=0)
        if before_id is not None and before_id > _INT64_MAX:
            before_id = None  # every stored id is below it
        if before_id is not None and before_id < _INT64_MIN:
            return ConversationPage([], has_more=False, head_seq=Seq(0), total_unread=0)
        limit = min(limit, _INT64_MAX - 1)
        return await self._read(
            lambda conn: select_conversation_page(conn, user_id, before_id, limit)
        )

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
        return await self._write(
            "mark_read", lambda conn: mark_read(conn, user_id, key, up_to, now)
        )

    async def group_read_counts(
        self, group_id: GroupId, message_ids: Sequence[MessageId]
    ) -> list[ReadCount]:
        if not _fits_int64(group_id):
            return []
        ids = [message_id for message_id in message_ids if _fits_int64(message_id)]
        return await self._read(lambda conn: select_read_counts(conn, group_id, ids))

    # Changes to messages.

    async def get_message(
        self, message_id: MessageId, viewer: UserId
    ) -> HeldMessage | None:
        if not (_fits_int64(message_id) and _fits_int64(viewer)):
            return None
        return await self._read(
            lambda conn: select_held_message(conn, message_id, viewer)
        )

    async def recall_message(
        self, actor: UserId, message_id: MessageId, now: int
    ) -> ChangeResult:
        _check_int64(actor=actor, message_id=message_id, now=now)
        return await self._write(
            "recall_message",
            lambda conn: recall_message(conn, actor, message_id, now),
        )

    async def edit_message(
        self, actor: UserId, message_id: MessageId, body: bytes, now: int
    ) -> ChangeResult:
        _check_int64(actor=actor, message_id=message_id, now=now)
        return await self._write(
            "edit_message",
            lambda conn: edit_message(conn, actor, message_id, body, now),
        )

    async def delete_message_for(
        self, user_id: UserId, message_id: MessageId, now: int
    ) -> ChangeResult:
        _check_int64(user_id=user_id, message_id=message_id, now=now)
        return await self._write(
            "delete_message_for",
            lambda conn: delete_message_for(conn, user_id, message_id, now),
        )

    async def inbox_seqs(
        self, user_id: UserId, message_ids: Sequence[MessageId]
    ) -> dict[MessageId, Seq]:
        if not _fits_int64(user_id):
            return {}
        ids = [message_id for message_id in message_ids if _fits_int64(message_id)]
        return await self._read(
            lambda conn: sqlite_inbox.select_inbox_seqs(conn, user_id, ids)
        )

    # Peers and presence.

    async def peers_among(
        self, user_id: UserId, candidates: Sequence[UserId]
    ) -> set[UserId]:
        if not _fits_int64(user_id):
            return set()
        users = [user for user in candidates if _fits_int64(user) and user != user_id]
        if not users:
            return set()
        return await self._read(
            lambda conn: sqlite_peers.select_peers_among(conn, user_id, users)
        )

    async def set_last_seen(self, user_id: UserId, seen_at: int) -> None:
        _check_int64(user_id=user_id, seen_at=seen_at)
        await self._write(
            "set_last_seen",
            lambda conn: sqlite_peers.raise_last_seen(conn, user_id, seen_at),
        )

    async def last_seen(self, user_ids: Sequence[UserId]) -> dict[UserId, int]:
        users = [user for user in user_ids if _fits_int64(user)]
        if not users:
            return {}
        return await self._read(lambda conn: sqlite_peers.select_last_seen(conn, users))

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
        ids = [user_id, peer_id or 0, group_id or 0]
        if not all(_fits_int64(value) for value in ids):
            return [], False
        if before_id is not None and before_id > _INT64_MAX:
            before_id = None  # every stored id is below it
        if before_id is not None and before_id < _INT64_MIN:
            return [], False
        search = sqlite_search.Search(
            user_id,
            tuple(terms),
            before_id,
            min(limit, _INT64_MAX - 1),
            peer_id,
            group_id,
        )
        page = await self._read(
            lambda conn: sqlite_search.select_matches(conn, search, MESSAGE_COLUMNS)
        )
        entries = [InboxEntry(seq, message_from_row(row)) for seq, row in page.rows]
        return entries, page.has_more

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
        new = _NewGroup(
            name, creator, tuple(members), now, max_members, timeline_above, history
        )
        return await self._write(
            "create_group", lambda conn: _create_group(conn, new, notice)
        )

    async def get_group(self, group_id: GroupId) -> Group | None:
        if not _fits_int64(group_id):
            return None
        return await self._read(lambda conn: _select_group(conn, group_id))

    async def count_groups(self) -> int:
        return await self._read(lambda conn: _count_rows(conn, "groups"))

    async def list_members(self, group_id: GroupId) -> list[Member]:
        if not _fits_int64(group_id):
            return []
        return await self._read(lambda conn: _select_members(conn, group_id))

    async def groups_of(self, user_id: UserId) -> list[Group]:
        if not _fits_int64(user_id):
            return []
        return await self._read(lambda conn: _select_groups_of(conn, user_id))

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
        users = tuple(dict.fromkeys(user_ids))
        new = _NewMembers(
            group_id, users, role, now, max_members, timeline_above, history
        )
        return await self._write(
            "add_members", lambda conn: _add_members(conn, new, notice)
        )

    async def remove_member(
        self,
        group_id: GroupId,
        user_id: UserId,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        _check_int64(group_id=group_id, user_id=user_id)
        return await self._write(
            "remove_member",
            lambda conn: _remove_member(conn, group_id, user_id, notice),
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
        return await self._write(
            "set_role",
            lambda conn: _set_role(conn, group_id, user_id, role, notice),
        )

    async def rename_group(
        self,
        group_id: GroupId,
        name: str,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        _check_int64(group_id=group_id)
        return await self._write(
            "rename_group", lambda conn: _rename_group(conn, group_id, name, notice)
        )

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
        message = _NewGroupMessage(
            sender,
            device,
            client_id,
            group_id,
            content_type,
            body,
            sent_at,
            tuple(mentions),
        )
        return await self._write(
            "append_group_message",
            lambda conn: _append_group_message(conn, message),
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
        # No user has id 0, so it hides nothing.
        viewer_id = UserId(0) if viewer is None or not _fits_int64(viewer) else viewer
        if before_id is not None and before_id > _INT64_MAX:
            before_id = None  # every stored id is below it
        if before_id is not None and before_id < _INT64_MIN:
            return [], False
        limit = min(limit, _INT64_MAX - 1)
        return await self._read(
            lambda conn: _select_group_page(conn, group_id, before_id, limit, viewer_id)
        )

    # Group timelines.

    async def read_timeline(
        self, group_id: GroupId, user_id: UserId, after_seq: Seq, limit: int
    ) -> TimelinePage:
        _check_limit(limit)
        _check_int64(group_id=group_id, user_id=user_id)
        after = min(after_seq, _INT64_MAX)
        limit = min(limit, _INT64_MAX - 1)

        def read(conn: sqlite3.Connection) -> TimelinePage:
            _require_group(conn, group_id)
            return sqlite_timeline.select_timeline_page(
                conn, group_id, user_id, after, limit
            )

        return await self._read(read)

    async def timelines_of(self, user_id: UserId) -> list[TimelineState]:
        if not _fits_int64(user_id):
            return []
        return await self._read(
            lambda conn: sqlite_timeline.select_timelines_of(conn, user_id)
        )

    async def mark_timeline_read(
        self, user_id: UserId, group_id: GroupId, up_to: MessageId | None, now: int
    ) -> ReadResult:
        _check_int64(user_id=user_id, group_id=group_id, now=now)
        if up_to is not None:
            up_to = MessageId(max(_INT64_MIN, min(up_to, _INT64_MAX)))

        def write(conn: sqlite3.Connection) -> ReadResult:
            _require_group(conn, group_id)
            return sqlite_timeline.mark_timeline_read(
                conn, user_id, group_id, up_to, now
            )

        return await self._write("mark_timeline_read", write)


# Group commit.


@dataclass(slots=True, eq=False)
class _WriteOp:
    """One queued write and, once applied, its outcome."""

    name: str
    """Store method that queued it, for logs."""
    apply: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


_STOP: Final = None
"""Queue item that makes the writer thread exit after the batch before it."""


class _Writer:
    """Thread that owns the write connection and commits queued writes in batches.

    Writes are applied in the order they were queued. A write that fails is
    rolled back alone and the rest of its batch still commits: the batch is
    applied again with each write inside its own SAVEPOINT. Callers' futures
    are resolved only after COMMIT returns. If the COMMIT fails, every write
    of the batch that had not failed on its own fails with StoreError.
    """

    def __init__(self, path: pathlib.Path, synchronous: str, batch_max: int) -> None:
        self._path = path
        self._synchronous = synchronous
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[_WriteOp | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name="switchboard-store-writer", daemon=True
        )
        self._ready: concurrent.futures.Future[tuple[int, int]] = (
            concurrent.futures.Future()
        )
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.commits = 0
        """Number of committed transactions; written by the writer thread only."""
        self._checkpointer = Checkpointer(path, _BUSY_TIMEOUT_S)

    def start(self) -> concurrent.futures.Future[tuple[int, int]]:
        """Start the thread; the future gets (old, new) schema version."""
        self._thread.start()
        return self._ready

    def put(self, op: _WriteOp) -> None:
        self._queue.put(op)

    def stop(self) -> concurrent.futures.Future[None]:
        """Ask the thread to exit once the queued writes are committed.

        The returned future completes after the thread closed the connection.
        """
        if self._thread.is_alive():
            self._queue.put(_STOP)
        elif not self._stopped.done():
            self._stopped.set_result(None)
        return self._stopped

    def _run(self) -> None:
        try:
            conn, versions = self._connect()
        except BaseException as exc:
            self._ready.set_exception(exc)
            self._stopped.set_result(None)
            return

        self._ready.set_result(versions)
        self._checkpointer.start()
        try:
            self._serve(conn)
        finally:
            try:
                self._checkpointer.stop()
                conn.close()
            finally:
                self._stopped.set_result(None)

    def _connect(self) -> tuple[sqlite3.Connection, tuple[int, int]]:
        """Open and configure the write connection, then migrate the schema."""
        if sqlite3.sqlite_version_info < _MIN_SQLITE_VERSION:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old: Switchboard needs "
                "3.35.0 or newer"
            )

        conn = sqlite3.connect(
            self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None
        )
        try:
            # A new file gets the smaller page, since a commit writes every page
            # it touched to the WAL whole. An existing file keeps its page size.
            conn.execute(f"PRAGMA page_size = {_NEW_FILE_PAGE_SIZE}")
            journal_mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if journal_mode != "wal":
                raise StoreError(
                    f"failed to enable WAL mode on {self._path}: "
                    f"journal_mode is {journal_mode!r}"
                )
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
            conn.execute("PRAGMA foreign_keys = ON")
            versions = migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn, versions

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            batch, stop = self._take_batch()
            if batch:
                self._write_batch(conn, batch)
                self._resolve(batch)
            if stop:
                return

    def _take_batch(self) -> tuple[list[_WriteOp], bool]:
        """Wait for a write, then take what else is queued, up to batch_max.

        Returns the batch and whether the stop item was reached.
        """
        first = self._queue.get()
        if first is _STOP:
            return [], True

        batch = [first]
        while len(batch) < self._batch_max:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op is _STOP:
                return batch, True
            batch.append(op)
        return batch, False

    def _write_batch(self, conn: sqlite3.Connection, batch: list[_WriteOp]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            if not self._apply_all(conn, batch):
                # A write failed: apply the batch again with a savepoint per
                # write, so that only the failed one is rolled back.
                rollback(conn)
                conn.execute("BEGIN IMMEDIATE")
                for op in batch:
                    self._apply(conn, op)
            self._commit(conn)
        except Exception as exc:
            logger.exception(
                "write batch of %d operations to %s failed and was rolled back",
                len(batch),
                self._path,
            )
            rollback(conn)
            for op in batch:
                if op.error is None:
                    op.error = StoreError(f"write transaction failed: {exc}")
                    op.error.__cause__ = exc
            return

        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("committed a batch of %d writes", len(batch))

    def _apply_all(self, conn: sqlite3.Connection, batch: list[_WriteOp]) -> bool:
        """Apply every write without savepoints; return False at the first
        that raises, leaving the transaction to be rolled back.

        Savepoints cost two statements per write, and writes rarely fail.
        """
        for op in batch:
            try:
                op.result = op.apply(conn)
            except Exception:
                return False
        return True

    def _apply(self, conn: sqlite3.Connection, op: _WriteOp) -> None:
        """Apply one write inside a savepoint; record its result or error.

        Raises sqlite3.Error only when the savepoint cannot be rolled back,
        which fails the whole batch.
        """
        conn.execute("SAVEPOINT write_op")
        try:
            op.result = op.apply(conn)
        except Exception as exc:
            op.error = _error_for_caller(op.name, exc)
            conn.execute("ROLLBACK TO write_op")
        conn.execute("RELEASE write_op")

    def _commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")
        self.commits += 1
        self._checkpointer.notify_commit()

    def _resolve(self, batch: list[_WriteOp]) -> None:
        """Hand each outcome to its caller's event loop, in queue order."""
        ops_by_loop: dict[asyncio.AbstractEventLoop, list[_WriteOp]] = {}
        for op in batch:
            ops_by_loop.setdefault(op.loop, []).append(op)

        for loop, ops in ops_by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, ops)
            except RuntimeError:
                # The writes are committed, but no caller can receive the results.
                logger.warning(
                    "event loop closed; dropped the outcome of %d committed writes",
                    len(ops),
                )


def _error_for_caller(op_name: str, exc: Exception) -> BaseException:
    """Log a failed write and return the exception its caller receives."""
    # A StoreError raised by a write (a taken name, a missing group or
    # message) rejects the request; the caller reports it.
    if isinstance(exc, StoreError):
        logger.debug("%s rejected: %s", op_name, exc)
        return exc
    if isinstance(exc, sqlite3.Error):
        logger.warning("%s failed: %s", op_name, exc)
        error = StoreError(f"{op_name} failed: {exc}")
        error.__cause__ = exc
        return error
    logger.exception("%s raised an unexpected error", op_name)
    return exc


def _settle_read(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():  # the caller was cancelled
        future.set_result(result)


def _settle_read_error(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _settle(ops: list[_WriteOp]) -> None:
    """Resolve callers' futures; runs on their event loop."""
    for op in ops:
        if op.future.done():  # the caller was cancelled
            continue
        if op.error is not None:
            op.future.set_exception(op.error)
        else:
            op.future.set_result(op.result)


# Input checks.


def _fits_int64(value: int) -> bool:
    return _INT64_MIN <= value <= _INT64_MAX


def _clamp_page(after_seq: Seq, limit: int) -> tuple[Seq, int]:
    """Clamp an inbox page request into SQLite's INTEGER range.

    Stored sequences are 1 to _INT64_MAX, so clamping changes no result.
    """
    return Seq(max(0, min(after_seq, _INT64_MAX))), min(limit, _INT64_MAX - 1)


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"invalid limit {limit}: must not be negative")


def _check_int64(**values: int) -> None:
    """Raise ValueError for a value outside SQLite's signed 64-bit INTEGER."""
    for name, value in values.items():
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(
                f"invalid {name} {value}: SQLite stores integers from "
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


# SQL for accounts, sessions and devices.

_USER_COLUMNS: Final = "id, name, password_hash, created_at"
_SESSION_COLUMNS: Final = (
    "token_hash, user_id, device, platform, created_at, expires_at"
)


def _user_from_row(row: tuple[Any, ...]) -> User:
    return User(id=UserId(row[0]), name=row[1], password_hash=row[2], created_at=row[3])


def _session_from_row(row: tuple[Any, ...]) -> Session:
    return Session(
        token_hash=row[0],
        user_id=UserId(row[1]),
        device=DeviceId(row[2]),
        platform=row[3],
        created_at=row[4],
        expires_at=row[5],
    )


def _insert_user(
    conn: sqlite3.Connection, name: str, password_hash: str, now: int
) -> User:
    try:
        row = conn.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)"
            " RETURNING id",
            (name, password_hash, now),
        ).fetchone()
    except sqlite3.IntegrityError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
            raise NameTaken(f"account name {name!r} already exists") from exc
        raise
    return User(
        id=UserId(row[0]), name=name, password_hash=password_hash, created_at=now
    )


def _select_user(
    conn: sqlite3.Connection, column: Literal["id", "name"], value: int | str
) -> User | None:
    """Return the user whose ``column`` (``id`` or ``name``) equals ``value``."""
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE {column} = ?", (value,)
    ).fetchone()
    return None if row is None else _user_from_row(row)


def _insert_session(conn: sqlite3.Connection, session: Session) -> None:
    conn.execute(
        f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            session.token_hash,
            session.user_id,
            session.device,
            session.platform,
            session.created_at,
            session.expires_at,
        ),
    )


def _select_session(conn: sqlite3.Connection, token_hash: bytes) -> Session | None:
    row = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return None if row is None else _session_from_row(row)


def _delete_session(conn: sqlite3.Connection, token_hash: bytes) -> Session | None:
    row = conn.execute(
        f"DELETE FROM sessions WHERE token_hash = ? RETURNING {_SESSION_COLUMNS}",
        (token_hash,),
    ).fetchone()
    return None if row is None else _session_from_row(row)


def _change_password(
    conn: sqlite3.Connection,
    user_id: UserId,
    password_hash: str,
    keep_token_hash: bytes,
) -> list[Session]:
    conn.execute(
        "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
    )
    # NOTE: scans the sessions table, which has no index by user; add one if
    # password changes become frequent.
    rows = conn.execute(
        "DELETE FROM sessions WHERE user_id = ? AND token_hash != ?"
        f" RETURNING {_SESSION_COLUMNS}",
        (user_id, keep_token_hash),
    ).fetchall()
    return [_session_from_row(row) for row in rows]


def _select_device(
    conn: sqlite3.Connection, user_id: UserId, device: DeviceId
) -> DeviceState:
    row = conn.execute(
        "SELECT cursor, last_client_id FROM devices WHERE user_id = ? AND device = ?",
        (user_id, device),
    ).fetchone()
    if row is None:
        return DeviceState(cursor=Seq(0), last_client_id=ClientMessageId(0))
    return DeviceState(cursor=Seq(row[0]), last_client_id=ClientMessageId(row[1]))


def _raise_cursor(
    conn: sqlite3.Connection, user_id: UserId, device: DeviceId, seq: Seq
) -> None:
    conn.execute(
        "INSERT INTO devices (user_id, device, cursor, last_client_id)"
        " VALUES (?, ?, ?, 0)"
        " ON CONFLICT (user_id, device)"
        " DO UPDATE SET cursor = max(cursor, excluded.cursor)",
        (user_id, device, seq),
    )


# SQL for messages and inboxes.

_NOT_DELETED_FOR: Final = (
    "NOT EXISTS (SELECT 1 FROM deleted_messages AS d"
    " WHERE d.user_id = ? AND d.message_id = m.id)"
)
"""WHERE term that leaves out messages a user (the parameter) deleted."""


@dataclass(frozen=True, slots=True)
class _NewMessage:
    """Arguments of one append_message call."""

    sender: UserId
    device: DeviceId
    client_id: ClientMessageId
    recipient: UserId
    content_type: int
    body: bytes
    sent_at: int


def _append_message(conn: sqlite3.Connection, new: _NewMessage) -> AppendResult:
    """Insert a message into both inboxes, or return the stored first copy."""
    first = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, m.sender_seq, m.recipient_seq FROM messages AS m"
        " WHERE m.sender = ? AND m.sender_device = ? AND m.client_id = ?",
        (new.sender, new.device, new.client_id),
    ).fetchone()
    if first is not None:
        # A group message stored under the same client id has no
        # recipient_seq, so the repeat gets 0 there.
        recipient_seq = first[MESSAGE_COLUMN_COUNT + 1]
        return AppendResult(
            message=message_from_row(first),
            sender_seq=Seq(first[MESSAGE_COLUMN_COUNT]),
            recipient_seq=Seq(0 if recipient_seq is None else recipient_seq),
            duplicate=True,
        )

    # A message to oneself takes one inbox entry, so one sequence.
    recipient_seq = next_seq(conn, new.recipient)
    if new.sender == new.recipient:
        sender_seq = recipient_seq
    else:
        sender_seq = next_seq(conn, new.sender)

    message_id = _insert_message(conn, new, sender_seq, recipient_seq)
    recipient_unread = touch_conversation(
        conn,
        new.recipient,
        ConversationKey(peer=new.sender),
        message_id,
        recipient_seq,
        counts=new.sender != new.recipient,
    )
    _insert_inbox_entry(
        conn, new.recipient, recipient_seq, message_id, recipient_unread
    )
    sender_unread = recipient_unread
    if new.sender != new.recipient:
        sender_unread = touch_conversation(
            conn,
            new.sender,
            ConversationKey(peer=new.recipient),
            message_id,
            sender_seq,
            counts=False,
        )
        _insert_inbox_entry(conn, new.sender, sender_seq, message_id, sender_unread)
    _raise_last_client_id(conn, new)

    message = StoredMessage(
        id=message_id,
        sender=new.sender,
        recipient=new.recipient,
        content_type=new.content_type,
        body=new.body,
        sent_at=new.sent_at,
    )
    return AppendResult(
        message=message,
        sender_seq=sender_seq,
        recipient_seq=recipient_seq,
        duplicate=False,
        sender_unread=sender_unread,
        recipient_unread=recipient_unread,
    )


def _insert_inbox_entry(
    conn: sqlite3.Connection,
    user_id: UserId,
    seq: Seq,
    message_id: MessageId,
    unread: int,
) -> None:
    conn.execute(
        "INSERT INTO inbox (user_id, seq, message_id, unread) VALUES (?, ?, ?, ?)",
        (user_id, seq, message_id, unread),
    )


def _insert_message(
    conn: sqlite3.Connection, new: _NewMessage, sender_seq: Seq, recipient_seq: Seq
) -> MessageId:
    conv_lo = min(new.sender, new.recipient)
    conv_hi = max(new.sender, new.recipient)
    row = conn.execute(
        "INSERT INTO messages (sender, sender_device, client_id, recipient,"
        " conv_lo, conv_hi, content_type, body, sent_at, sender_seq, recipient_seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            new.sender,
            new.device,
            new.client_id,
            new.recipient,
            conv_lo,
            conv_hi,
            new.content_type,
            new.body,
            new.sent_at,
            sender_seq,
            recipient_seq,
        ),
    ).fetchone()
    return MessageId(row[0])


def _raise_last_client_id(
    conn: sqlite3.Connection, new: _NewMessage | _NewGroupMessage
) -> None:
    conn.execute(
        "INSERT INTO devices (user_id, device, cursor, last_client_id)"
        " VALUES (?, ?, 0, ?)"
        " ON CONFLICT (user_id, device)"
        " DO UPDATE SET last_client_id = max(last_client_id, excluded.last_client_id)",
        (new.sender, new.device, new.client_id),
    )


def _select_inbox_page(
    conn: sqlite3.Connection, user_id: UserId, after_seq: Seq, limit: int
) -> InboxPage:
    # Fetching one row more than the limit shows whether more entries follow.
    with read_transaction(conn):
        rows = conn.execute(
            f"SELECT i.seq, coalesce(i.unread, 0), d.message_id IS NOT NULL,"
            f" {MESSAGE_COLUMNS}"
            " FROM inbox AS i JOIN messages AS m ON m.id = i.message_id"
            " LEFT JOIN deleted_messages AS d"
            " ON d.user_id = i.user_id AND d.message_id = i.message_id"
            " WHERE i.user_id = ? AND i.seq > ?"
            " ORDER BY i.seq LIMIT ?",
            (user_id, after_seq, limit + 1),
        ).fetchall()
        head_seq = _select_head_seq(conn, user_id)

    entries = [
        InboxEntry(
            seq=Seq(row[0]),
            message=message_from_row(row, start=3),
            unread=row[1],
            deleted=bool(row[2]),
        )
        for row in rows[:limit]
    ]
    return InboxPage(entries=entries, has_more=len(rows) > limit, head_seq=head_seq)


def _count_rows(conn: sqlite3.Connection, table: str) -> int:
    # ``table`` is one of the fixed names passed in this module, never input.
    row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(row[0])


def _select_head_seq(conn: sqlite3.Connection, user_id: UserId) -> Seq:
    row = conn.execute(
        "SELECT head_seq FROM inbox_heads WHERE user_id = ?", (user_id,)
    ).fetchone()
    return Seq(0 if row is None else row[0])


def _select_conversation_page(
    conn: sqlite3.Connection,
    user_id: UserId,
    peer_id: UserId,
    before_id: MessageId | None,
    limit: int,
) -> tuple[list[StoredMessage], bool]:
    conv_lo = min(user_id, peer_id)
    conv_hi = max(user_id, peer_id)
    if before_id is None:
        id_filter = ""
        params: tuple[int, ...] = (conv_lo, conv_hi, user_id, limit + 1)
    else:
        id_filter = " AND m.id < ?"
        params = (conv_lo, conv_hi, before_id, user_id, limit + 1)

    # Fetching one row more than the limit shows whether older messages remain.
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m"
        f" WHERE m.conv_lo = ? AND m.conv_hi = ?{id_filter} AND m.change IS NULL"
        f" AND {_NOT_DELETED_FOR}"
        " ORDER BY m.id DESC LIMIT ?",
        params,
    ).fetchall()
    messages = [message_from_row(row) for row in rows[:limit]]
    return messages, len(rows) > limit


# SQL for groups.

_GROUP_FIELDS: Final = "id, name, created_by, created_at, mode"
_GROUP_COLUMNS: Final = (
    "g.id, g.name, g.created_by, g.created_at, CASE WHEN EXISTS (SELECT 1 FROM"
    " group_timelines AS t WHERE t.group_id = g.id) THEN 'read' ELSE g.mode END"
)


@dataclass(frozen=True, slots=True)
class _NewGroup:
    """Arguments of one create_group call."""

    name: str
    creator: UserId
    members: tuple[UserId, ...]
    now: int
    max_members: int
    timeline_above: int | None
    history: int | None


@dataclass(frozen=True, slots=True)
class _NewMembers:
    """Arguments of one add_members call."""

    group_id: GroupId
    users: tuple[UserId, ...]
    role: Role
    now: int
    max_members: int
    timeline_above: int | None
    history: int | None


@dataclass(frozen=True, slots=True)
class _NewGroupMessage:
    """Arguments of one append_group_message call."""

    sender: UserId
    device: DeviceId
    client_id: ClientMessageId
    group_id: GroupId
    content_type: int
    body: bytes
    sent_at: int
    mentions: tuple[UserId, ...]


def _group_from_row(row: tuple[Any, ...]) -> Group:
    return Group(
        id=GroupId(row[0]),
        name=row[1],
        created_by=UserId(row[2]),
        created_at=row[3],
        mode=row[4],
    )


def _select_group(conn: sqlite3.Connection, group_id: GroupId) -> Group | None:
    row = conn.execute(
        f"SELECT {_GROUP_COLUMNS} FROM groups AS g WHERE g.id = ?", (group_id,)
    ).fetchone()
    return None if row is None else _group_from_row(row)


def _require_group(conn: sqlite3.Connection, group_id: GroupId) -> Group:
    group = _select_group(conn, group_id)
    if group is None:
        raise GroupNotFound(f"no group with id {group_id}")
    return group


def _select_members(conn: sqlite3.Connection, group_id: GroupId) -> list[Member]:
    rows = conn.execute(
        "SELECT user_id, role, joined_at FROM group_members"
        " WHERE group_id = ? ORDER BY user_id",
        (group_id,),
    ).fetchall()
    return [
        Member(user_id=UserId(row[0]), role=Role(row[1]), joined_at=row[2])
        for row in rows
    ]


def _select_member_ids(conn: sqlite3.Connection, group_id: GroupId) -> list[UserId]:
    rows = conn.execute(
        "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id",
        (group_id,),
    ).fetchall()
    return [UserId(row[0]) for row in rows]


def _select_groups_of(conn: sqlite3.Connection, user_id: UserId) -> list[Group]:
    rows = conn.execute(
        f"SELECT {_GROUP_COLUMNS} FROM group_members AS gm"
        " JOIN groups AS g ON g.id = gm.group_id"
        " WHERE gm.user_id = ? ORDER BY g.id",
        (user_id,),
    ).fetchall()
    return [_group_from_row(row) for row in rows]


def _insert_members(
    conn: sqlite3.Connection,
    group_id: GroupId,
    members: Sequence[tuple[UserId, Role]],
    now: int,
    history: int | None,
) -> None:
    conn.executemany(
        "INSERT INTO group_members (group_id, user_id, role, joined_at)"
        " VALUES (?, ?, ?, ?)",
        [(group_id, user_id, role.value, now) for user_id, role in members],
    )
    users = [user_id for user_id, _ in members]
    join_group(conn, group_id, users)
    if sqlite_timeline.timeline_head(conn, group_id) is not None:
        sqlite_timeline.add_timeline_members(conn, group_id, users, history)


def _switch_if_large(
    conn: sqlite3.Connection,
    group_id: GroupId,
    size: int,
    timeline_above: int | None,
    now: int,
) -> None:
    """Switch a ``"write"`` group of more than ``timeline_above`` members to
    ``"read"`` mode."""
    if timeline_above is None or size <= timeline_above:
        return
    if sqlite_timeline.timeline_head(conn, group_id) is None:
        sqlite_timeline.switch_to_timeline(conn, group_id, now)


def _create_group(
    conn: sqlite3.Connection, new: _NewGroup, notice: GroupNotice | None
) -> GroupChange:
    others = [user for user in dict.fromkeys(new.members) if user != new.creator]
    size = 1 + len(others)
    row = conn.execute(
        "INSERT INTO groups (name, created_by, created_at) VALUES (?, ?, ?)"
        f" RETURNING {_GROUP_FIELDS}",
        (new.name, new.creator, new.now),
    ).fetchone()
    group = _group_from_row(row)
    if size > new.max_members:
        raise GroupFull(group.id, size, new.max_members)

    members = [(new.creator, Role.OWNER)]
    members += [(user, Role.MEMBER) for user in others]
    _insert_members(conn, group.id, members, new.now, new.history)
    _switch_if_large(conn, group.id, size, new.timeline_above, new.now)
    appended = _append_notice(conn, group.id, notice)
    return GroupChange(_require_group(conn, group.id), appended)


def _add_members(
    conn: sqlite3.Connection, new: _NewMembers, notice: GroupNotice | None
) -> GroupChange:
    group_id = new.group_id
    _require_group(conn, group_id)
    current = set(_select_member_ids(conn, group_id))
    for user_id in new.users:
        if user_id in current:
            raise AlreadyMember(group_id, user_id)
    size = len(current) + len(new.users)
    if size > new.max_members:
        raise GroupFull(group_id, size, new.max_members)

    members = [(user, new.role) for user in new.users]
    _insert_members(conn, group_id, members, new.now, new.history)
    _switch_if_large(conn, group_id, size, new.timeline_above, new.now)
    appended = _append_notice(conn, group_id, notice)
    return GroupChange(_require_group(conn, group_id), appended)


def _remove_member(
    conn: sqlite3.Connection,
    group_id: GroupId,
    user_id: UserId,
    notice: GroupNotice | None,
) -> GroupChange:
    group = _require_group(conn, group_id)
    if user_id not in _select_member_ids(conn, group_id):
        raise NotMember(group_id, user_id)

    # The notice goes first, so the removed member still gets it.
    appended = _append_notice(conn, group_id, notice)
    conn.execute(
        "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
        (group_id, user_id),
    )
    sqlite_timeline.leave_timeline(conn, group_id, user_id)
    return GroupChange(group, appended)


def _set_role(
    conn: sqlite3.Connection,
    group_id: GroupId,
    user_id: UserId,
    role: Role,
    notice: GroupNotice | None,
) -> GroupChange:
    group = _require_group(conn, group_id)
    updated = conn.execute(
        "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?",
        (role.value, group_id, user_id),
    ).rowcount
    if updated == 0:
        raise NotMember(group_id, user_id)
    return GroupChange(group, _append_notice(conn, group_id, notice))


def _rename_group(
    conn: sqlite3.Connection,
    group_id: GroupId,
    name: str,
    notice: GroupNotice | None,
) -> GroupChange:
    row = conn.execute(
        f"UPDATE groups SET name = ? WHERE id = ? RETURNING {_GROUP_FIELDS}",
        (name, group_id),
    ).fetchone()
    if row is None:
        raise GroupNotFound(f"no group with id {group_id}")
    appended = _append_notice(conn, group_id, notice)
    return GroupChange(_require_group(conn, group_id), appended)


def _append_notice(
    conn: sqlite3.Connection, group_id: GroupId, notice: GroupNotice | None
) -> GroupAppendResult | None:
    if notice is None:
        return None
    return _fan_out(
        conn,
        group_id,
        notice.actor,
        None,
        notice.content_type,
        notice.body(group_id),
        notice.sent_at,
        (),
    )


def _append_group_message(
    conn: sqlite3.Connection, new: _NewGroupMessage
) -> GroupAppendResult:
    """Insert a message into every member's inbox, or return the stored copy."""
    first = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, m.sender_seq, m.timeline_seq FROM messages AS m"
        " WHERE m.sender = ? AND m.sender_device = ? AND m.client_id = ?",
        (new.sender, new.device, new.client_id),
    ).fetchone()
    if first is not None:
        timeline_seq = first[MESSAGE_COLUMN_COUNT + 1]
        if timeline_seq is not None:
            return GroupAppendResult(
                message=message_from_row(first),
                seqs={},
                duplicate=True,
                timeline_seq=Seq(timeline_seq),
            )
        return GroupAppendResult(
            message=message_from_row(first),
            seqs={new.sender: Seq(first[MESSAGE_COLUMN_COUNT])},
            duplicate=True,
        )

    _require_group(conn, new.group_id)
    result = _fan_out(
        conn,
        new.group_id,
        new.sender,
        (new.device, new.client_id),
        new.content_type,
        new.body,
        new.sent_at,
        new.mentions,
    )
    _raise_last_client_id(conn, new)
    return result


def _fan_out(
    conn: sqlite3.Connection,
    group_id: GroupId,
    sender: UserId,
    origin: tuple[DeviceId, ClientMessageId] | None,
    content_type: int,
    body: bytes,
    sent_at: int,
    mentions: tuple[UserId, ...],
) -> GroupAppendResult:
    """Insert a group message and one inbox entry per current member.

    ``origin`` is the sender's (device, client id), None for a notice. The
    membership is read here, inside the write transaction, so the message
    and any membership change are applied in one order. A group in
    ``"read"`` mode gets the message in its timeline instead.
    """
    if sqlite_timeline.timeline_head(conn, group_id) is not None:
        return sqlite_timeline.append_to_timeline(
            conn, group_id, sender, origin, content_type, body, sent_at, mentions
        )
    members = _select_member_ids(conn, group_id)
    member_set = set(members)
    if sender not in member_set:
        raise NotMember(group_id, sender)
    for user_id in mentions:
        if user_id not in member_set:
            raise InvalidMention(group_id, user_id)

    # One sequence and one inbox row per member, so the cost of a message
    # grows with the group, up to large_group_threshold members.
    seqs = {user_id: next_seq(conn, user_id) for user_id in members}
    device, client_id = origin if origin is not None else (None, None)
    mentions_text = json.dumps(mentions) if mentions else None
    row = conn.execute(
        "INSERT INTO messages (sender, sender_device, client_id, group_id,"
        " content_type, body, sent_at, sender_seq, mentions)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            sender,
            device,
            client_id,
            group_id,
            content_type,
            body,
            sent_at,
            seqs[sender],
            mentions_text,
        ),
    ).fetchone()
    message_id = MessageId(row[0])
    # A notice (no origin) does not count as unread.
    key = ConversationKey(group=group_id)
    unread = {
        user_id: touch_conversation(
            conn,
            user_id,
            key,
            message_id,
            seq,
            counts=origin is not None and user_id != sender,
        )
        for user_id, seq in seqs.items()
    }
    conn.executemany(
        "INSERT INTO inbox (user_id, seq, message_id, unread) VALUES (?, ?, ?, ?)",
        [(user_id, seq, message_id, unread[user_id]) for user_id, seq in seqs.items()],
    )

    message = StoredMessage(
        id=message_id,
        sender=sender,
        recipient=UserId(0),
        content_type=content_type,
        body=body,
        sent_at=sent_at,
        group_id=group_id,
        mentions=mentions,
    )
    return GroupAppendResult(message=message, seqs=seqs, duplicate=False, unread=unread)


def _select_group_page(
    conn: sqlite3.Connection,
    group_id: GroupId,
    before_id: MessageId | None,
    limit: int,
    viewer: UserId,
) -> tuple[list[StoredMessage], bool]:
    if before_id is None:
        id_filter = ""
        params: tuple[int, ...] = (group_id, viewer, limit + 1)
    else:
        id_filter = " AND m.id < ?"
        params = (group_id, before_id, viewer, limit + 1)

    # Fetching one row more than the limit shows whether older messages remain.
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m"
        f" WHERE m.group_id = ?{id_filter} AND m.change IS NULL"
        f" AND {_NOT_DELETED_FOR}"
        " ORDER BY m.id DESC LIMIT ?",
        params,
    ).fetchall()
    messages = [message_from_row(row) for row in rows[:limit]]
    return messages, len(rows) > limit
