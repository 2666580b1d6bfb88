"""Messages as the PostgreSQL store writes and reads them: columns and rows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

import asyncpg

from switchboard.ids import ClientMessageId, DeviceId, GroupId, MessageId, Seq, UserId
from switchboard.store.base import ConversationKey, StoredMessage

__all__ = [
    "COPY_COLUMNS",
    "MESSAGE_COLUMNS",
    "AppendedCopy",
    "OutgoingMessage",
    "message_from_row",
    "prefixed",
    "stored_from_row",
]

MESSAGE_COLUMNS: Final = (
    "message_id, sender, recipient, group_id, content_type, body, sent_at,"
    " mentions, notice, change, target"
)
"""Columns of a message in both the inbox and the outbox."""

COPY_COLUMNS: Final = MESSAGE_COLUMNS + ", edited_at, recalled_at"
"""Columns of a message's copy in an inbox."""


def prefixed(columns: str, alias: str) -> str:
    """Qualify each of the comma-separated ``columns`` with a table alias."""
    return ", ".join(f"{alias}.{column}" for column in columns.split(", "))


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message or change being written: the content every inbox copy repeats."""

    id: MessageId
    sender: UserId
    recipient: UserId | None
    """The recipient of a one-to-one message; None for a group message."""
    group_id: GroupId | None
    content_type: int
    body: bytes
    sent_at: int
    mentions: tuple[UserId, ...] = ()
    origin: tuple[DeviceId, ClientMessageId] | None = None
    """The sender's (device, client id) of a new message from a client; None
    otherwise, and in a message read back from the outbox."""
    notice: bool = False
    """A group notice of the server, which never counts as unread."""
    change: int = 0
    """For a change entry, its kind (``StoredMessage.change``); 0 otherwise."""
    target: MessageId = MessageId(0)
    """For a change entry, the message it refers to."""

    def stored(self) -> StoredMessage:
        return StoredMessage(
            id=self.id,
            sender=self.sender,
            recipient=UserId(0) if self.recipient is None else self.recipient,
            content_type=self.content_type,
            body=self.body,
            sent_at=self.sent_at,
            group_id=self.group_id,
            mentions=self.mentions,
            change=self.change,
            target=self.target,
        )

    def peer_of(self, user_id: UserId) -> UserId | None:
        """Return the other user of a one-to-one message, seen from ``user_id``."""
        if self.recipient is None:
            return None
        return self.recipient if user_id == self.sender else self.sender

    def key_of(self, user_id: UserId) -> ConversationKey:
        """Return the message's conversation as ``user_id`` sees it."""
        if self.group_id is not None:
            return ConversationKey(group=self.group_id)
        peer = self.peer_of(user_id)
        assert peer is not None, "a one-to-one message has a recipient"
        return ConversationKey(peer=peer)

    def counts_for(self, user_id: UserId) -> bool:
        """Return whether the message adds to the unread count of ``user_id``:
        it is from another user, and neither a notice nor a change."""
        return not (self.notice or self.change) and user_id != self.sender


@dataclass(frozen=True, slots=True)
class AppendedCopy:
    """A copy in one user's inbox."""

    seq: Seq
    unread: int
    """The owner's unread count of the conversation once the copy is applied."""


def message_from_row(row: asyncpg.Record) -> OutgoingMessage:
    """Build a message from a row with the MESSAGE_COLUMNS."""
    mentions = row["mentions"]
    return OutgoingMessage(
        id=MessageId(row["message_id"]),
        sender=UserId(row["sender"]),
        recipient=None if row["recipient"] is None else UserId(row["recipient"]),
        group_id=None if row["group_id"] is None else GroupId(row["group_id"]),
        content_type=row["content_type"],
        body=row["body"],
        sent_at=row["sent_at"],
        mentions=() if mentions is None else tuple(UserId(u) for u in mentions),
        notice=row["notice"],
        change=row["change"] or 0,
        target=MessageId(row["target"] or 0),
    )


def stored_from_row(row: asyncpg.Record) -> StoredMessage:
    """Build a stored message from a row with the COPY_COLUMNS."""
    return dataclasses.replace(
        message_from_row(row).stored(),
        edited_at=row["edited_at"] or 0,
        recalled_at=row["recalled_at"] or 0,
    )
