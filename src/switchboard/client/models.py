"""Values the SDK returns: users, logins, messages, receipts, groups,
conversations, change events and gateways."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MEDIA",
    "NOTICE",
    "TEXT",
    "Changed",
    "Conversation",
    "ConversationPage",
    "ConversationRead",
    "Event",
    "Gateway",
    "Group",
    "GroupMember",
    "GroupNotice",
    "HistoryPage",
    "InboxItem",
    "Login",
    "Media",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageRecalled",
    "ReadCount",
    "ReadReceipt",
    "SearchPage",
    "Sent",
    "User",
]

TEXT = 0
"""Content type of a UTF-8 text message."""

MEDIA = 1
"""Content type of a message that refers to an uploaded file (see :class:`Media`)."""

NOTICE = 2
"""Content type of the server's notice of a group change (see :class:`GroupNotice`)."""


@dataclass(frozen=True, slots=True)
class User:
    """An account: its numeric id and its unique name."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Login:
    """A token issued by ``POST /v1/sessions`` for one device."""

    token: str
    user_id: int
    device: str
    expires_at: int
    """Milliseconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Sent:
    """The server's receipt for a stored message (a ``SendAck`` frame).

    Sending again with the same ``client_id`` returns a receipt with the
    same ``id`` and ``seq``; from the same client object, an equal one.
    """

    client_id: int
    recipient_id: int
    """The recipient of a one-to-one message; 0 for a group message."""
    id: int
    """Server message id, the same in every inbox that contains the message."""
    seq: int
    """The message's sequence in the sender's inbox."""
    sent_at: int
    """Milliseconds since the Unix epoch: the client's estimate of the server
    clock when the acknowledgement arrived, late by up to one network delay.
    History and sync carry the time the server stored."""
    group_id: int = 0
    """The group of a group message; 0 for a one-to-one message."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message, from the inbox or from history.

    Names are None when the SDK could not look them up (server unreachable).
    """

    id: int
    seq: int
    """Position in this user's inbox; 0 when the server did not report it."""
    sender_id: int
    recipient_id: int
    """The recipient of a one-to-one message; 0 for a group message."""
    sender_name: str | None
    recipient_name: str | None
    content_type: int
    body: bytes
    sent_at: int
    """Milliseconds since the Unix epoch when the server stored it; for a
    message pushed live, the client's estimate of the server clock when it
    arrived, late by up to one network delay."""
    outgoing: bool
    """Whether this user sent the message (from this device or another)."""
    group_id: int = 0
    """The group of a group message; 0 for a one-to-one message."""
    edited_at: int = 0
    """When the sender last edited the body, in milliseconds; 0 if never."""
    recalled: bool = False
    """The sender recalled the message; the body is empty."""
    deleted: bool = False
    """This user deleted the message for themselves; the body is empty."""
    group_name: str | None = None
    """The group's name, if known; None when this user is no longer a member."""
    mentions: tuple[int, ...] = ()
    """Users mentioned in a group message."""
    group_seq: int = 0
    """Position in a large group's timeline; ``seq`` is 0 then."""

    @property
    def text(self) -> str | None:
        """The body decoded as UTF-8 for a text message; None for other types."""
        if self.content_type != TEXT:
            return None
        return self.body.decode(errors="replace")

    @property
    def media(self) -> Media | None:
        """The file a media message refers to, or None for other content types
        and for a media body that does not parse."""
        if self.content_type != MEDIA:
            return None
        return Media.from_body(self.body)

    @property
    def notice(self) -> GroupNotice | None:
        """The group change a notice reports; None for other messages."""
        if self.content_type != NOTICE or not self.group_id:
            return None
        return GroupNotice.from_body(self.body)

    @property
    def peer_id(self) -> int:
        """The other user of the one-to-one conversation this message belongs
        to; 0 for a group message."""
        if self.group_id:
            return 0
        return self.recipient_id if self.outgoing else self.sender_id

    @property
    def conversation(self) -> tuple[int, int]:
        """The conversation as ``(peer_id, group_id)``, one of them 0."""
        if self.group_id:
            return (0, self.group_id)
        return (self.peer_id, 0)

    @property
    def peer_name(self) -> str | None:
        """Name of :attr:`peer_id`, if known."""
        return self.recipient_name if self.outgoing else self.sender_name


@dataclass(frozen=True, slots=True)
class Media:
    """An uploaded file: the response of ``POST /v1/media``, or the reference
    in a media message, which carries no URLs.

    ``id`` is the SHA-256 of the file's bytes in hex. ``content_type`` was
    sniffed from the bytes by the server.
    """

    id: str
    content_type: str
    size: int
    """Bytes."""
    name: str | None = None
    """File name for display, as given by the uploader."""
    width: int | None = None
    """Pixels, for images."""
    height: int | None = None
    url: str | None = None
    """Signed download URL, valid until ``expires_at``."""
    thumbnail_url: str | None = None
    """Signed URL of a thumbnail at most 320 pixels wide and high, for images."""
    expires_at: int | None = None
    """When the URLs stop working, in milliseconds since the Unix epoch."""

    def to_body(self) -> bytes:
        """Return the body of a media message that refers to this file."""
        reference: dict[str, Any] = {
            "media": self.id,
            "content_type": self.content_type,
            "size": self.size,
        }
        for field in ("name", "width", "height"):
            value = getattr(self, field)
            if value is not None:
                reference[field] = value
        return json.dumps(reference, ensure_ascii=False).encode()

    @classmethod
    def from_body(cls, body: bytes) -> Media | None:
        """Parse a media message's body, or return None for an invalid one."""
        try:
            reference = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(reference, dict):
            return None
        return cls.from_json(reference)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Media | None:
        """Build a Media from a parsed media body (id in ``media``) or API
        response (id in ``id``). Returns None when a required field is missing
        or mistyped."""
        media_id = item.get("media", item.get("id"))
        content_type = item.get("content_type")
        size = _int_or_none(item.get("size"))
        if not isinstance(media_id, str) or not isinstance(content_type, str):
            return None
        if size is None:
            return None
        return cls(
            id=media_id,
            content_type=content_type,
            size=size,
            name=_str_or_none(item.get("name")),
            width=_int_or_none(item.get("width")),
            height=_int_or_none(item.get("height")),
            url=_str_or_none(item.get("url")),
            thumbnail_url=_str_or_none(item.get("thumbnail_url")),
            expires_at=_int_or_none(item.get("expires_at")),
        )


def _int_or_none(value: Any) -> int | None:
    # bool is a subclass of int, but not a number here.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class GroupNotice:
    """A change of a group, from a notice message's body.

    ``event`` is ``group_created``, ``member_added``, ``member_removed``,
    ``member_left``, ``role_changed`` or ``group_renamed``; later servers may
    add others.
    """

    event: str
    group_id: int
    actor_id: int
    """The user who made the change."""
    user_ids: tuple[int, ...] = ()
    """The users the change is about: created with, added, removed, left."""
    name: str | None = None
    """The group's name, for ``group_created`` and ``group_renamed``."""
    role: str | None = None
    """The role given, for ``member_added`` and ``role_changed``."""

    @classmethod
    def from_body(cls, body: bytes) -> GroupNotice | None:
        """Parse a notice body, or return None for one that does not parse."""
        try:
            content = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(content, dict):
            return None
        event = content.get("event")
        group_id = _int_or_none(content.get("group"))
        actor_id = _int_or_none(content.get("by"))
        if not isinstance(event, str) or group_id is None or actor_id is None:
            return None
        users = content.get("users")
        user_ids: tuple[int, ...] = ()
        if isinstance(users, list):
            user_ids = tuple(u for u in users if _int_or_none(u) is not None)
        return cls(
            event=event,
            group_id=group_id,
            actor_id=actor_id,
            user_ids=user_ids,
            name=_str_or_none(content.get("name")),
            role=_str_or_none(content.get("role")),
        )


@dataclass(frozen=True, slots=True)
class GroupMember:
    """A member of a group and its role: ``owner``, ``admin`` or ``member``."""

    id: int
    name: str
    role: str
    joined_at: int
    """Milliseconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Group:
    """A group chat. ``members`` is empty where the server lists groups
    without their members (:meth:`Client.groups`)."""

    id: int
    name: str
    created_by: int
    created_at: int
    """Milliseconds since the Unix epoch."""
    members: tuple[GroupMember, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of one conversation, newest message first."""

    messages: list[Message]
    has_more: bool
    """Whether older messages exist; pass the last id as ``before`` to read them."""


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of search matches, newest first."""

    messages: list[Message]
    next_cursor: str | None
    """Pass as ``cursor`` to read the next page; None after the last match."""


@dataclass(frozen=True, slots=True)
class Gateway:
    """A gateway address for a socket connection.

    ``address`` is ``HOST:PORT`` for the ``tcp`` transport and a ``ws://`` or
    ``wss://`` URL for the ``ws`` transport.
    """

    transport: str
    address: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """One entry of the conversation list: a one-to-one conversation or a group."""

    peer_id: int
    """The other user of a one-to-one conversation; 0 for a group."""
    group_id: int
    """The group; 0 for a one-to-one conversation."""
    name: str
    """The peer's account name or the group's name."""
    last: Message | None
    """The latest message, a text cut to a preview of 256 bytes; None when
    the client does not know it (after a deletion of the latest message)."""
    unread: int
    """Messages from other users after ``read_id``."""
    read_id: int
    """This user has read every message up to this id."""
    peer_read_id: int
    """One-to-one: the peer has read every message up to this id; groups: 0."""
    truncated: bool = False
    """The text of ``last`` was cut to a preview."""

    @property
    def key(self) -> tuple[int, int]:
        """``(peer_id, group_id)``, as :attr:`Message.conversation`."""
        return (self.peer_id, self.group_id)


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """A page of the conversation list, most recent first."""

    conversations: list[Conversation]
    has_more: bool
    """Whether older conversations exist; pass the last ``last.id`` as
    ``before`` to read them."""
    head_seq: int
    """The inbox head the page reflects."""
    total_unread: int
    """Unread messages over all conversations, not only this page."""


@dataclass(frozen=True, slots=True)
class Changed:
    """The server's acknowledgement of a read, recall, edit or delete."""

    changed: bool
    """False when nothing changed: the read position was there already, or
    the message was recalled, deleted or given this body before."""
    seq: int
    """The change entry's sequence in this user's inbox; 0 when unchanged, and
    for a large group's message, whose change is an entry of the group's
    timeline."""
    id: int
    """The change entry's id; 0 when unchanged."""
    changed_at: int
    """Milliseconds since the Unix epoch; 0 when unchanged."""
    unread: int = 0
    """Unread messages left in the conversation."""
    read_id: int = 0
    """For a read: the read position now."""


@dataclass(frozen=True, slots=True)
class ReadCount:
    """How many members of a group read one of its messages."""

    message_id: int
    read: int
    """Members other than the sender whose read position reaches the message."""
    members: int
    """Members other than the sender who joined before the message."""


@dataclass(frozen=True, slots=True)
class MessageRecalled:
    """The sender recalled a message for everyone: show it as recalled."""

    seq: int
    message_id: int
    sender_id: int
    """The user who recalled it: its sender."""
    peer_id: int
    """The conversation, as in :attr:`Message.conversation`."""
    group_id: int
    recalled_at: int
    """Milliseconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """The sender replaced the body of a message: show the new one."""

    seq: int
    message_id: int
    sender_id: int
    peer_id: int
    group_id: int
    content_type: int
    body: bytes
    edited_at: int
    """Milliseconds since the Unix epoch."""

    @property
    def text(self) -> str | None:
        """The new body decoded as UTF-8 for a text message; None otherwise."""
        if self.content_type != TEXT:
            return None
        return self.body.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    """This user deleted a message for themselves, on this or another device."""

    seq: int
    message_id: int
    peer_id: int
    group_id: int
    deleted_at: int
    """Milliseconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class ConversationRead:
    """This user read a conversation, on this or another device."""

    seq: int
    peer_id: int
    group_id: int
    read_id: int
    """Every message up to this id is read."""
    unread: int
    """Unread messages left in the conversation."""
    read_at: int


@dataclass(frozen=True, slots=True)
class ReadReceipt:
    """Another user read a conversation with this user up to a message.

    Receipts are not stored by the server: a device that was offline finds
    the peer's position in :attr:`Conversation.peer_read_id`.
    """

    reader_id: int
    group_id: int
    """The group; 0 for the one-to-one conversation with the reader."""
    message_id: int
    read_at: int


InboxItem = (
    Message | MessageRecalled | MessageEdited | MessageDeleted | ConversationRead
)
"""An entry of the inbox: a message, or a change that refers to one."""

Event = InboxItem | ReadReceipt
"""An item that :meth:`Client.next_event` returns."""
