"""Conversion of stored inbox entries to their wire form."""

from __future__ import annotations

from typing import cast

from switchboard.ids import Seq, UserId
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from switchboard.protocol.framing import encode_frame
from switchboard.store.base import InboxEntry, StoredMessage

__all__ = ["SharedMessage", "to_live_message", "to_wire_message"]


def to_wire_message(entry: InboxEntry) -> pb.Message:
    """Convert a stored inbox entry to its wire form.

    A message recalled by its sender, or deleted by the inbox's owner, has
    an empty body and its state set.
    """
    message = entry.message
    if entry.deleted:
        state = pb.MESSAGE_STATE_DELETED
    elif message.recalled_at:
        state = pb.MESSAGE_STATE_RECALLED
    else:
        state = pb.MESSAGE_STATE_NORMAL
    return pb.Message(
        seq=entry.seq,
        id=message.id,
        sender=message.sender,
        recipient=message.recipient,
        body=message.body if state == pb.MESSAGE_STATE_NORMAL else b"",
        content_type=message.content_type,
        sent_at=message.sent_at,
        group=message.group_id or 0,
        mentions=message.mentions,
        unread=entry.unread,
        change=cast("pb.ChangeKind", message.change),
        target=message.target,
        edited_at=message.edited_at,
        state=state,
    )


def to_live_message(entry: InboxEntry, receiver: UserId) -> pb.Message:
    """Convert an entry of ``receiver``'s inbox to the Message pushed live.

    A live push leaves out what its receiver can fill in: ``sent_at``, which
    the client estimates as ``Connected.server_time`` plus the time since,
    and ``recipient`` when it is the receiver. A sync page carries both.
    """
    message = to_wire_message(entry)
    message.ClearField("sent_at")
    if message.recipient == receiver:
        message.ClearField("recipient")
    return message


class SharedMessage:
    """A message to encode once and frame for many inboxes.

    The fields every copy shares are serialized once. Each inbox's frame is
    that serialization followed by the serialized ``seq`` and ``unread`` of
    its own entry. A protobuf parser merges concatenated serializations, and
    the shared part leaves those two fields unset, so the frame decodes
    exactly like the copy encoded whole.
    """

    __slots__ = ("shared",)

    def __init__(self, message: StoredMessage) -> None:
        self.shared = to_wire_message(InboxEntry(Seq(0), message)).SerializeToString()

    def frame(self, seq: int, unread: int) -> bytes:
        """Return the Message frame of the entry at ``seq`` with ``unread``."""
        tail = pb.Message(seq=seq, unread=unread).SerializeToString()
        return encode_frame(FrameType.MESSAGE, self.shared + tail)
