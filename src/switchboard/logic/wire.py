"""Conversion of stored inbox entries to their wire form."""

from __future__ import annotations

from typing import cast

from switchboard.protocol import pb
from switchboard.store.base import InboxEntry

__all__ = ["to_wire_message"]


def to_wire_message(entry: InboxEntry) -> pb.Message:
    """Convert a stored inbox entry to its wire form."""
    message = entry.message
    return pb.Message(
        seq=entry.seq,
        id=message.id,
        sender=message.sender,
        recipient=message.recipient,
        body=message.body,
        content_type=message.content_type,
        sent_at=message.sent_at,
        group=message.group_id or 0,
        mentions=message.mentions,
        unread=entry.unread,
        change=cast("pb.ChangeKind", message.change),
        target=message.target,
    )
