"""Conversion of the server's frames to the values the SDK hands out."""

from __future__ import annotations

from switchboard.client.models import (
    Conversation,
    ConversationPage,
    ConversationRead,
    InboxItem,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageRecalled,
)
from switchboard.client.state import ClientState
from switchboard.protocol import pb

__all__ = ["conversation_page", "inbox_item", "wire_message"]


def inbox_item(message: pb.Message, state: ClientState) -> InboxItem:
    """Convert a wire entry to a message, or to the change it records."""
    if message.change == pb.CHANGE_NONE:
        return wire_message(message, state)
    peer_id = 0
    if not message.group:
        mine = message.sender == state.user_id
        peer_id = message.recipient if mine else message.sender
    if message.change == pb.CHANGE_READ:
        return ConversationRead(
            message.seq,
            peer_id,
            message.group,
            message.target,
            message.unread,
            message.sent_at,
        )
    if message.change == pb.CHANGE_RECALL:
        return MessageRecalled(
            message.seq,
            message.target,
            message.sender,
            peer_id,
            message.group,
            message.sent_at,
        )
    if message.change == pb.CHANGE_EDIT:
        return MessageEdited(
            message.seq,
            message.target,
            message.sender,
            peer_id,
            message.group,
            message.content_type,
            message.body,
            message.sent_at,
        )
    # CHANGE_DELETE, and kinds of later protocol versions, which change
    # nothing this client shows.
    return MessageDeleted(
        message.seq, message.target, peer_id, message.group, message.sent_at
    )


def wire_message(message: pb.Message, state: ClientState) -> Message:
    """Convert a wire message entry to a Message of the SDK."""
    return Message(
        id=message.id,
        seq=message.seq,
        sender_id=message.sender,
        recipient_id=message.recipient,
        sender_name=None,
        recipient_name=None,
        content_type=message.content_type,
        body=message.body,
        sent_at=message.sent_at,
        outgoing=message.sender == state.user_id,
        group_id=message.group,
        mentions=tuple(message.mentions),
        edited_at=message.edited_at,
        recalled=message.state == pb.MESSAGE_STATE_RECALLED,
        deleted=message.state == pb.MESSAGE_STATE_DELETED,
        group_seq=message.group_seq,
    )


def conversation_page(
    listing: pb.ConversationList, state: ClientState
) -> ConversationPage:
    conversations = [
        Conversation(
            peer_id=item.peer,
            group_id=item.group,
            name=item.name,
            last=wire_message(item.last, state) if item.HasField("last") else None,
            unread=item.unread,
            read_id=item.read_id,
            peer_read_id=item.peer_read_id,
            truncated=item.truncated,
        )
        for item in listing.conversations
    ]
    return ConversationPage(
        conversations, listing.has_more, listing.head_seq, listing.total_unread
    )
