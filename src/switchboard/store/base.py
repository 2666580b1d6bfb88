"""Storage interface: accounts, sessions, devices, messages and inboxes.

Every implementation passes the conformance suite in tests/store/. Times are
milliseconds since the Unix epoch. Each user's inbox sequence starts at 1 and
is gapless and strictly increasing.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from switchboard.errors import SwitchboardError
from switchboard.ids import ClientMessageId, DeviceId, MessageId, Seq, UserId

__all__ = [
    "AppendResult",
    "DeviceState",
    "InboxEntry",
    "InboxPage",
    "NameTaken",
    "Session",
    "Store",
    "StoreError",
    "StoredMessage",
    "User",
]


class StoreError(SwitchboardError):
    """The storage backend failed."""


class NameTaken(StoreError):
    """An account with this name already exists."""


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    name: str
    password_hash: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Session:
    """A login: the token's SHA-256 digest, never the token itself."""

    token_hash: bytes
    user_id: UserId
    device: DeviceId
    platform: int
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the server keeps per device."""

    cursor: Seq
    """Highest sequence the device reported as stored."""
    last_client_id: ClientMessageId
    """Highest client message id stored from this device."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: MessageId
    sender: UserId
    recipient: UserId
    content_type: int
    body: bytes
    sent_at: int


@dataclass(frozen=True, slots=True)
class InboxEntry:
    seq: Seq
    message: StoredMessage


@dataclass(frozen=True, slots=True)
class InboxPage:
    entries: list[InboxEntry]
    """Ordered by seq, ascending, all above the requested ``after_seq``."""
    has_more: bool
    """Entries after the last one in ``entries`` exist."""
    head_seq: Seq
    """Highest sequence in the inbox when the page was read."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    message: StoredMessage
    sender_seq: Seq
    recipient_seq: Seq
    duplicate: bool
    """True when (sender, device, client id) was stored before; nothing was
    written and ``message`` and the sequences are those of the first copy."""


class Store(abc.ABC):
    """Durable state of the chat service."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, apply pending schema migrations and start background work."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish queued writes and release every resource."""

    # Accounts.

    @abc.abstractmethod
    async def create_user(self, name: str, password_hash: str, now: int) -> User:
        """Insert an account. Raises NameTaken if ``name`` exists."""

    @abc.abstractmethod
    async def get_user(self, user_id: UserId) -> User | None: ...

    @abc.abstractmethod
    async def get_user_by_name(self, name: str) -> User | None: ...

    # Sessions.

    @abc.abstractmethod
    async def create_session(self, session: Session) -> None: ...

    @abc.abstractmethod
    async def get_session(self, token_hash: bytes) -> Session | None:
        """Return the session, expired or not, or None if absent or revoked."""

    @abc.abstractmethod
    async def delete_session(self, token_hash: bytes) -> Session | None:
        """Revoke a session; return it, or None if it did not exist."""

    # Devices.

    @abc.abstractmethod
    async def get_device(self, user_id: UserId, device: DeviceId) -> DeviceState:
        """Return the device's state; zeros for a device never seen."""

    @abc.abstractmethod
    async def set_cursor(self, user_id: UserId, device: DeviceId, seq: Seq) -> None:
        """Raise the device's cursor to ``seq``; a lower value changes nothing."""

    # Messages.

    @abc.abstractmethod
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
        """Store a message in the recipient's and the sender's inboxes.

        Returns only once the write is durable (committed). A message to
        oneself takes one inbox entry. A repeat of (sender, device, client_id)
        writes nothing and returns the first copy with ``duplicate`` set.
        """

    @abc.abstractmethod
    async def read_inbox(
        self, user_id: UserId, after_seq: Seq, limit: int
    ) -> InboxPage:
        """Return up to ``limit`` entries with seq > ``after_seq``, ascending."""

    @abc.abstractmethod
    async def head_seq(self, user_id: UserId) -> Seq:
        """Return the highest sequence in the inbox, 0 when it is empty."""

    @abc.abstractmethod
    async def read_conversation(
        self,
        user_id: UserId,
        peer_id: UserId,
        before_id: MessageId | None,
        limit: int,
    ) -> tuple[list[StoredMessage], bool]:
        """Page backwards through the messages between two users.

        Returns up to ``limit`` messages with id < ``before_id`` (all when
        None), newest first, and whether older ones remain.
        """
