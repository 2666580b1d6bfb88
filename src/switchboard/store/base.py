"""Storage interface: accounts, sessions, devices, messages, inboxes and groups.

Every implementation passes the conformance suite in tests/store/. Times are
milliseconds since the Unix epoch. Each user's inbox sequence starts at 1 and
is gapless and strictly increasing.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from switchboard.errors import SwitchboardError
from switchboard.ids import (
    ClientMessageId,
    DeviceId,
    GroupId,
    MessageId,
    Seq,
    UserId,
)

__all__ = [
    "GROUP_MODE_READ",
    "GROUP_MODE_WRITE",
    "AlreadyMember",
    "AppendResult",
    "ChangeResult",
    "ConnectState",
    "Conversation",
    "ConversationKey",
    "ConversationPage",
    "DeviceState",
    "Group",
    "GroupAppendResult",
    "GroupChange",
    "GroupFull",
    "GroupNotFound",
    "GroupNotice",
    "HeldMessage",
    "InboxEntry",
    "InboxPage",
    "InvalidMention",
    "Member",
    "MessageNotFound",
    "MessageRecalled",
    "NameTaken",
    "NotMember",
    "ReadCount",
    "ReadResult",
    "Role",
    "Session",
    "Store",
    "StoreError",
    "StoredMessage",
    "TimelineEntry",
    "TimelinePage",
    "TimelineState",
    "User",
]


class StoreError(SwitchboardError):
    """The storage backend failed."""


class NameTaken(StoreError):
    """An account with this name already exists."""


class GroupNotFound(StoreError):
    """No group with this id exists."""


class NotMember(StoreError):
    """The user is not a member of the group."""

    def __init__(self, group_id: GroupId, user_id: UserId) -> None:
        super().__init__(f"user {user_id} is not a member of group {group_id}")
        self.group_id = group_id
        self.user_id = user_id


class AlreadyMember(StoreError):
    """A user to add is a member of the group already."""

    def __init__(self, group_id: GroupId, user_id: UserId) -> None:
        super().__init__(f"user {user_id} is a member of group {group_id} already")
        self.group_id = group_id
        self.user_id = user_id


class GroupFull(StoreError):
    """Adding the users would take the group above its maximum size."""

    def __init__(self, group_id: GroupId, size: int, max_members: int) -> None:
        super().__init__(
            f"group {group_id} would have {size} members; the maximum is {max_members}"
        )
        self.size = size
        self.max_members = max_members


class InvalidMention(StoreError):
    """A message mentions a user who is not a member of its group."""

    def __init__(self, group_id: GroupId, user_id: UserId) -> None:
        super().__init__(
            f"mentioned user {user_id} is not a member of group {group_id}"
        )
        self.group_id = group_id
        self.user_id = user_id


class MessageNotFound(StoreError):
    """No message with this id is in the user's inbox."""


class MessageRecalled(StoreError):
    """The message was recalled, so it cannot be edited."""


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
    """The recipient of a one-to-one message; 0 for a group message."""
    content_type: int
    body: bytes
    sent_at: int
    group_id: GroupId | None = None
    """The group of a group message; None for a one-to-one message."""
    mentions: tuple[UserId, ...] = ()
    """Users mentioned in a group message, in the sender's order."""
    change: int = 0
    """For a change entry, what it records (a ``ChangeKind`` of the wire
    schema, such as 1 for a read); 0 for a message."""
    target: MessageId = MessageId(0)
    """For a change entry, the message it refers to; for a read, the read
    position."""
    edited_at: int = 0
    """When the sender last edited the body; 0 if never."""
    recalled_at: int = 0
    """When the sender recalled the message, whose body is then empty; 0 if
    not recalled."""


@dataclass(frozen=True, slots=True)
class InboxEntry:
    seq: Seq
    message: StoredMessage
    unread: int = 0
    """Unread messages of the entry's conversation for the inbox's owner,
    once this entry is applied."""
    deleted: bool = False
    """The inbox's owner deleted the message for themselves."""


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
    sender_unread: int = 0
    """The sender's unread count of the conversation after the message."""
    recipient_unread: int = 0
    """The recipient's unread count of the conversation after the message."""


class Role(enum.StrEnum):
    """A member's rank in a group, highest first."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Group:
    id: GroupId
    name: str
    created_by: UserId
    created_at: int
    mode: str
    """Delivery mode: ``"write"`` copies each message into every member's
    inbox (fan-out on write); ``"read"`` appends it once to the group's
    timeline, which members read by its own sequence (fan-out on read)."""


GROUP_MODE_WRITE = "write"
GROUP_MODE_READ = "read"


@dataclass(frozen=True, slots=True)
class Member:
    user_id: UserId
    role: Role
    joined_at: int


@dataclass(frozen=True, slots=True)
class GroupAppendResult:
    message: StoredMessage
    seqs: dict[UserId, Seq]
    """The message's sequence in the inbox of every member it was stored for.
    For a duplicate only the sender's entry, because the first copy was
    delivered already."""
    duplicate: bool
    """True when (sender, device, client id) was stored before; nothing was
    written and ``message`` is the first copy."""
    unread: dict[UserId, int] = field(default_factory=dict)
    """Each member's unread count of the group after the message; empty for
    a duplicate."""
    timeline_seq: Seq = Seq(0)
    """The message's sequence in the group's timeline when the group is in
    ``"read"`` mode; ``seqs`` and ``unread`` are empty then. 0 otherwise."""
    members: tuple[UserId, ...] = ()
    """For a timeline message, the members when it was stored, who get it
    pushed; empty for a duplicate and in ``"write"`` mode."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """A message of a group timeline at its sequence in that timeline."""

    seq: Seq
    message: StoredMessage
    deleted: bool = False
    """The reading user deleted the message for themselves; set in what is
    read for one user, never in a push."""


@dataclass(frozen=True, slots=True)
class TimelinePage:
    entries: list[TimelineEntry]
    """Ordered by seq, ascending, all above the requested ``after_seq`` and at
    or above ``start_seq``."""
    has_more: bool
    """Entries the user may read exist after the last one in ``entries``."""
    head_seq: Seq
    """Highest sequence the user may read: the group's head for a member,
    the notice of its removal for a former member."""
    start_seq: Seq
    """First sequence the user may read, set when it joined."""


@dataclass(frozen=True, slots=True)
class TimelineState:
    """A group timeline from the view of one member or former member."""

    group: Group
    start_seq: Seq
    """First sequence the user may read."""
    head_seq: Seq
    """Highest sequence the user may read."""
    left: bool
    """The user is no longer a member; ``head_seq`` is its removal notice."""
    last: TimelineEntry | None
    """The newest entry the user may read; None when there is none."""
    read_id: MessageId
    """The user has read every message of the timeline up to this id."""
    unread: int
    """Messages of other users after ``read_id`` and up to ``head_seq``;
    notices and recalled messages do not count."""


@dataclass(frozen=True, slots=True)
class ConnectState:
    """The stored state that a Connected frame reports, read in one call."""

    page: InboxPage
    """The first inbox page after the device's cursor."""
    device: DeviceState
    """The device's state, read after the page, so that it covers every
    message in the page."""
    timelines: list[TimelineState]
    """The timelines the user may read."""


@dataclass(frozen=True, slots=True)
class GroupNotice:
    """A system message that a group change appends in its own transaction.

    ``body`` builds the message body from the group's id, which a new group
    gets only inside the transaction. The notice's sender is ``actor``, who
    must be a member when the notice is appended.
    """

    actor: UserId
    content_type: int
    body: Callable[[GroupId], bytes]
    sent_at: int


@dataclass(frozen=True, slots=True)
class GroupChange:
    group: Group
    """The group after the change."""
    notice: GroupAppendResult | None
    """The appended notice, or None when the change was made without one."""


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """A conversation as one user sees it: a peer or a group, the other 0."""

    peer: UserId = UserId(0)
    group: GroupId = GroupId(0)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One entry of a user's conversation list."""

    key: ConversationKey
    name: str
    """The peer's account name or the group's name."""
    last: InboxEntry
    """The latest message of the conversation in the user's inbox."""
    unread: int
    """Messages from others after ``read_id``; group notices do not count."""
    read_id: MessageId
    """The user has read every message up to this id."""
    peer_read_id: MessageId
    """One-to-one: the peer's ``read_id`` in the same conversation; groups: 0."""


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[Conversation]
    """Ordered by the id of the last message, newest first."""
    has_more: bool
    """Conversations with older last messages exist."""
    head_seq: Seq
    """The user's inbox head when the page was read; the page reflects every
    entry up to it."""
    total_unread: int
    """Unread messages over all the user's conversations."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    read_id: MessageId
    """The read position after the call."""
    unread: int
    """The conversation's unread count after the call."""
    entry: InboxEntry | None
    """The change entry appended to the reader's inbox; None when the read
    position did not move."""
    notify: tuple[UserId, ...] = ()
    """Users whose messages the move made read: the peer of a one-to-one
    conversation, or the senders in a group. Empty when nothing moved."""


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A message as seen by one user whose inbox contains it."""

    message: StoredMessage
    deleted: bool
    """The user deleted it for themselves."""
    notice: bool
    """A group notice of the server, which nobody may recall or edit."""


@dataclass(frozen=True, slots=True)
class ChangeResult:
    target: StoredMessage
    """The changed message, after the change."""
    entries: dict[UserId, InboxEntry]
    """The change entry appended to each inbox the change concerns; empty
    when nothing changed (a repeated recall or deletion)."""
    timeline: GroupAppendResult | None = None
    """For a recall or edit of a large group's message: the change entry
    appended to the group's timeline, with the members to push it to. Its
    ``entries`` are empty then."""


@dataclass(frozen=True, slots=True)
class ReadCount:
    message_id: MessageId
    read: int
    """Members other than the sender whose read position reaches the message."""
    members: int
    """Members other than the sender who joined before the message."""


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

    @abc.abstractmethod
    async def count_users(self) -> int:
        """Return the number of accounts."""

    # Sessions.

    @abc.abstractmethod
    async def create_session(self, session: Session) -> None: ...

    @abc.abstractmethod
    async def get_session(self, token_hash: bytes) -> Session | None:
        """Return the session, expired or not, or None if absent or revoked."""

    @abc.abstractmethod
    async def delete_session(self, token_hash: bytes) -> Session | None:
        """Revoke a session; return it, or None if it did not exist."""

    @abc.abstractmethod
    async def change_password(
        self, user_id: UserId, password_hash: str, keep_token_hash: bytes
    ) -> list[Session]:
        """Set the user's password hash and revoke its other sessions.

        Every session of ``user_id`` but the one of ``keep_token_hash`` is
        deleted in the same transaction; returns the deleted ones.
        """

    @abc.abstractmethod
    async def find_in_bodies(
        self, user_id: UserId, content_type: int, needle: bytes, limit: int
    ) -> list[tuple[UserId, bytes]]:
        """Return (sender, body) of messages of ``content_type`` in the user's
        inbox whose body contains ``needle``, at most ``limit`` of them.

        Recalled messages have an empty body, so they never match.
        """

    # Devices.

    @abc.abstractmethod
    async def get_device(self, user_id: UserId, device: DeviceId) -> DeviceState:
        """Return the device's state; zeros for a device never seen."""

    async def read_connect_state(
        self, user_id: UserId, device: DeviceId, after_seq: Seq, limit: int
    ) -> ConnectState:
        """Read the inbox page after ``after_seq``, then the device's state,
        then the user's timelines.

        The three reads behave as read_inbox, get_device and timelines_of.
        A store may run them in one round trip to its database.
        """
        page = await self.read_inbox(user_id, after_seq, limit)
        state = await self.get_device(user_id, device)
        timelines = await self.timelines_of(user_id)
        return ConnectState(page, state, timelines)

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
        None), newest first, and whether older ones remain. Messages that
        ``user_id`` deleted for themselves are left out.
        """

    # Conversations.

    @abc.abstractmethod
    async def list_conversations(
        self, user_id: UserId, before_id: MessageId | None, limit: int
    ) -> ConversationPage:
        """Return up to ``limit`` conversations whose last message id is below
        ``before_id`` (all when None), most recent first.

        A conversation exists once a message of it is in the user's inbox.
        ``unread`` counts the messages of other users stored after the user's
        read position. Group notices and the user's own messages never count.
        """

    @abc.abstractmethod
    async def mark_read(
        self,
        user_id: UserId,
        key: ConversationKey,
        up_to: MessageId | None,
        now: int,
    ) -> ReadResult:
        """Move the user's read position in a conversation up to ``up_to``.

        None, or an id above the conversation's newest message, moves it to
        the newest message. The position never moves back. When it moves,
        the unread count is counted again and a read entry (``change`` 1,
        ``target`` the new position) is appended to the user's inbox in the
        same transaction. Reading a one-to-one conversation without messages
        changes nothing. Raises NotMember when the user never was in the
        group of a group ``key``.
        """

    @abc.abstractmethod
    async def group_read_counts(
        self, group_id: GroupId, message_ids: Sequence[MessageId]
    ) -> list[ReadCount]:
        """Count the current members who read each message of the group.

        Ids that are not messages of the group sent by a user (notices,
        change entries, other groups) are left out. The order follows
        ``message_ids``.
        """

    # Changes to messages.

    @abc.abstractmethod
    async def get_message(
        self, message_id: MessageId, viewer: UserId
    ) -> HeldMessage | None:
        """Return a message in ``viewer``'s inbox, or None.

        None also for change entries, and for group messages sent while the
        viewer was not a member.
        """

    @abc.abstractmethod
    async def recall_message(
        self, actor: UserId, message_id: MessageId, now: int
    ) -> ChangeResult:
        """Recall a message for everyone: empty its body and mark it recalled.

        Appends a recall entry (``change`` 2) to every inbox that holds the
        message, of a group message only to current members and ``actor``,
        with each owner's unread count once the message no longer counts.
        Recalling a recalled message changes nothing. Raises MessageNotFound
        when ``actor`` does not hold the message. The caller checks that
        ``actor`` sent it.
        """

    @abc.abstractmethod
    async def edit_message(
        self, actor: UserId, message_id: MessageId, body: bytes, now: int
    ) -> ChangeResult:
        """Replace a message's body and append an edit entry (``change`` 3,
        the new body) to every inbox that contains it. For a group message,
        only the inboxes of current members and ``actor`` get one.

        Raises MessageNotFound when ``actor`` does not hold the message and
        MessageRecalled when it was recalled. The caller checks the sender
        and the body.
        """

    @abc.abstractmethod
    async def delete_message_for(
        self, user_id: UserId, message_id: MessageId, now: int
    ) -> ChangeResult:
        """Delete a message for one user: hide it from the user's history,
        conversation list and unread count, and append a delete entry
        (``change`` 4) to the user's inbox only.

        Deleting it again changes nothing. Raises MessageNotFound when the
        user does not hold the message.
        """

    @abc.abstractmethod
    async def inbox_seqs(
        self, user_id: UserId, message_ids: Sequence[MessageId]
    ) -> dict[MessageId, Seq]:
        """Return the sequence of each message in the user's inbox.

        Messages that the inbox does not contain are left out.
        """

    # Peers and presence.

    @abc.abstractmethod
    async def peers_among(
        self, user_id: UserId, candidates: Sequence[UserId]
    ) -> set[UserId]:
        """Return the candidates that are conversation peers of ``user_id``.

        Two users are peers when each has sent the other a one-to-one
        message, or when both are members of one group. A user is not its
        own peer.
        """

    @abc.abstractmethod
    async def set_last_seen(self, user_id: UserId, seen_at: int) -> None:
        """Record when the user was last online; an earlier time changes nothing."""

    @abc.abstractmethod
    async def last_seen(self, user_ids: Sequence[UserId]) -> dict[UserId, int]:
        """Return when each user was last online; users never recorded are left
        out."""

    # Search.

    @abc.abstractmethod
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
        """Find the text messages of the user's inbox that contain every term.

        A term matches a word that starts with it, ignoring case and
        diacritics; ``terms`` must not be empty. ``peer_id`` keeps the
        one-to-one conversation with that user, ``group_id`` that group's
        messages. Returns up to ``limit`` entries with a message id below
        ``before_id`` (all when None), newest first, and whether more match.
        Messages of other inboxes are never returned.
        """

    # Groups.

    @abc.abstractmethod
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
        """Create a group owned by ``creator`` with ``members`` as members.

        ``creator`` and repeats in ``members`` are counted once. The notice,
        if any, is appended after the members join, so all of them get it.
        A group of more than ``timeline_above`` members (None: no limit) is
        created in ``"read"`` mode. ``history`` is as for add_members.
        Raises GroupFull when the group would have more than ``max_members``.
        """

    @abc.abstractmethod
    async def get_group(self, group_id: GroupId) -> Group | None: ...

    @abc.abstractmethod
    async def count_groups(self) -> int:
        """Return the number of groups."""

    @abc.abstractmethod
    async def list_members(self, group_id: GroupId) -> list[Member]:
        """Return the members ordered by user id; empty for an unknown group."""

    @abc.abstractmethod
    async def groups_of(self, user_id: UserId) -> list[Group]:
        """Return the groups the user is a member of, ordered by id."""

    @abc.abstractmethod
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
        """Add users with ``role``; the notice follows, so they get it too.

        A ``"write"`` group that grows above ``timeline_above`` members (None:
        no limit) switches to ``"read"`` mode before the notice, which is the
        first entry of its timeline. In ``"read"`` mode a new member may read
        the ``history`` timeline entries before its join (None: all of them).

        Writes nothing and raises GroupNotFound, AlreadyMember when one of the
        users is a member, or GroupFull when the group would have more than
        ``max_members``.
        """

    @abc.abstractmethod
    async def remove_member(
        self,
        group_id: GroupId,
        user_id: UserId,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        """Remove a member after appending the notice, so it is the last group
        message in the removed member's inbox.

        Raises GroupNotFound, or NotMember when ``user_id`` is not a member.
        """

    @abc.abstractmethod
    async def set_role(
        self,
        group_id: GroupId,
        user_id: UserId,
        role: Role,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        """Change a member's role. Raises GroupNotFound or NotMember."""

    @abc.abstractmethod
    async def rename_group(
        self,
        group_id: GroupId,
        name: str,
        *,
        notice: GroupNotice | None = None,
    ) -> GroupChange:
        """Rename the group. Raises GroupNotFound."""

    @abc.abstractmethod
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
        """Store a message in the inbox of every member of the group.

        The membership is read in the same transaction as the write, so a
        message and a membership change are ordered: a member removed before
        the message gets no entry for it. Returns once the write is durable.
        A repeat of (sender, device, client_id) writes nothing and returns
        the first copy with ``duplicate`` set, even if the sender has left
        since. Otherwise raises GroupNotFound, NotMember when the sender is
        not a member, or InvalidMention when a mentioned user is not one.
        """

    @abc.abstractmethod
    async def read_group_history(
        self,
        group_id: GroupId,
        before_id: MessageId | None,
        limit: int,
        *,
        viewer: UserId | None = None,
    ) -> tuple[list[StoredMessage], bool]:
        """Page backwards through a group's messages and notices.

        Returns up to ``limit`` messages with id < ``before_id`` (all when
        None), newest first, and whether older ones remain. Messages that
        ``viewer`` deleted for themselves are left out.
        """

    # Group timelines (groups in "read" mode).

    @abc.abstractmethod
    async def read_timeline(
        self, group_id: GroupId, user_id: UserId, after_seq: Seq, limit: int
    ) -> TimelinePage:
        """Return up to ``limit`` timeline entries with seq > ``after_seq``.

        Only entries from the user's ``start_seq`` up to its ``head_seq`` are
        returned: a former member reads up to the notice of its removal.
        Raises GroupNotFound, or NotMember when the user never had access or
        the group is not in ``"read"`` mode.
        """

    @abc.abstractmethod
    async def timelines_of(self, user_id: UserId) -> list[TimelineState]:
        """Return the timelines the user may read, as a member or a former
        member, ordered by group id."""

    @abc.abstractmethod
    async def mark_timeline_read(
        self, user_id: UserId, group_id: GroupId, up_to: MessageId | None, now: int
    ) -> ReadResult:
        """Move the user's read position in a group timeline up to ``up_to``.

        None, or an id above the newest message the user may read, moves it
        to that message. The position never moves back. When it moves, a
        read entry (``change`` 1, ``target`` the new position, the group's
        unread count) is appended to the user's inbox, so the user's other
        devices learn it, and ``notify`` lists the senders of the messages
        that became read. Raises NotMember like read_timeline.
        """
