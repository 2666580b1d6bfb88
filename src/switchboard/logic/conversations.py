"""Conversation lists: the first screen of a chat app, in one frame.

The list is ordered by each conversation's last message, newest first, and
carries the unread counts. A client gets it right after ``Connected`` by
setting ``Connect.conversations``, with a ``Conversations`` frame, or over
HTTP (``GET /v1/conversations``). docs/protocol.md, section "Conversations",
describes how a client keeps it current from the entries that follow.
"""

from __future__ import annotations

from typing import Final

from switchboard.bus.base import Bus, Inbound, Outbound
from switchboard.config import Settings
from switchboard.ids import GroupId, MessageId, Seq, UserId
from switchboard.logic.content import TEXT
from switchboard.logic.wire import to_wire_message
from switchboard.protocol import pb
from switchboard.protocol.frames import encode
from switchboard.store.base import (
    Conversation,
    ConversationKey,
    ConversationPage,
    InboxEntry,
    Store,
    TimelineState,
)

__all__ = ["PREVIEW_BYTES", "ConversationService", "conversation_list", "preview"]

PREVIEW_BYTES: Final = 256
"""Maximum length of the text preview of a conversation's last message, in
bytes."""
LIST_FRAME_OVERHEAD: Final = 64
"""Bytes reserved in a ConversationList frame besides its conversations."""
CONVERSATION_FIELD_OVERHEAD: Final = 4
"""Tag and length prefix of one embedded Conversation, at most."""


class ConversationService:
    """Reads conversation lists and replies to ``Conversations`` frames."""

    def __init__(self, settings: Settings, store: Store, bus: Bus) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus

    async def page(
        self, user_id: UserId, before_id: int, limit: int
    ) -> ConversationPage:
        """Return a page of the user's conversations, most recent first.

        ``before_id`` 0 starts from the most recent. A ``limit`` of 0 requests
        the default page size, and larger ones are capped.
        """
        before = MessageId(before_id) if before_id else None
        limit = self._limit(limit)
        page = await self._store.list_conversations(user_id, before, limit)
        timelines = await self._store.timelines_of(user_id)
        if not timelines:
            return page
        return merge_timelines(page, timelines, before, limit)

    async def list_frame(self, user_id: UserId, before_id: int, limit: int) -> bytes:
        """Return an encoded ConversationList frame for the user."""
        page = await self.page(user_id, before_id, limit)
        message = conversation_list(page, before_id, self._settings.max_frame_size)
        return encode(message)

    async def handle(self, item: Inbound) -> None:
        """Reply to a ``Conversations`` frame with a ConversationList."""
        request = pb.ConversationsRequest.FromString(item.payload)
        data = await self.list_frame(item.user_id, request.before, request.limit)
        self._bus.publish_outbound(Outbound(item.endpoint, data))

    def _limit(self, requested: int) -> int:
        if requested == 0:
            return self._settings.conversation_page
        return min(requested, self._settings.max_conversation_page)


def merge_timelines(
    page: ConversationPage,
    timelines: list[TimelineState],
    before: MessageId | None,
    limit: int,
) -> ConversationPage:
    """Merge the user's large groups into a page of its inbox conversations.

    A large group's last message and unread count come from its timeline.
    An inbox conversation of the same group, left from before the group
    switched to a timeline, is replaced by it.
    """
    # NOTE: the store counts each large group's unread messages when the list
    # is read, in time proportional to that count, and reads every large
    # group of the user for each page.
    large = {GroupId(state.group.id) for state in timelines}
    merged = [c for c in page.conversations if c.key.group not in large]
    for state in timelines:
        if state.last is None:
            continue
        if before is not None and state.last.message.id >= before:
            continue
        merged.append(_timeline_conversation(state))
    merged.sort(key=lambda c: c.last.message.id, reverse=True)
    total = page.total_unread + sum(state.unread for state in timelines)
    return ConversationPage(
        conversations=merged[:limit],
        has_more=page.has_more or len(merged) > limit,
        head_seq=page.head_seq,
        total_unread=total,
    )


def _timeline_conversation(state: TimelineState) -> Conversation:
    assert state.last is not None
    return Conversation(
        key=ConversationKey(group=state.group.id),
        name=state.group.name,
        last=InboxEntry(Seq(0), state.last.message),
        unread=state.unread,
        read_id=state.read_id,
        peer_read_id=MessageId(0),
    )


def conversation_list(
    page: ConversationPage, before_id: int, max_bytes: int
) -> pb.ConversationList:
    """Build a ConversationList whose encoding stays within ``max_bytes``.

    Conversations that would overflow the frame are left for the next
    request, with ``has_more`` set. A conversation too large for the frame
    on its own is sent without the body of its last message.
    """
    response = pb.ConversationList(
        head_seq=page.head_seq, total_unread=page.total_unread, before=before_id
    )
    budget = max_bytes - LIST_FRAME_OVERHEAD
    trimmed = False
    for conversation in page.conversations:
        item = wire_conversation(conversation)
        size = item.ByteSize() + CONVERSATION_FIELD_OVERHEAD
        if size > budget and len(response.conversations) > 0:
            trimmed = True
            break
        if size > budget:
            item.last.body = b""
            item.truncated = True
            size = item.ByteSize() + CONVERSATION_FIELD_OVERHEAD
        budget -= size
        response.conversations.append(item)
    response.has_more = page.has_more or trimmed
    return response


def wire_conversation(conversation: Conversation) -> pb.Conversation:
    """Convert a conversation to its wire form, with a preview of its last
    message."""
    last = to_wire_message(conversation.last)
    last.unread = 0  # Conversation.unread carries the count.
    last.body, truncated = preview(last.content_type, last.body)
    return pb.Conversation(
        peer=conversation.key.peer,
        group=conversation.key.group,
        name=conversation.name,
        last=last,
        unread=conversation.unread,
        read_id=conversation.read_id,
        peer_read_id=conversation.peer_read_id,
        truncated=truncated,
    )


def preview(content_type: int, body: bytes) -> tuple[bytes, bool]:
    """Return the preview of a body and whether it was cut.

    A text body is cut to PREVIEW_BYTES at a character boundary. Other
    bodies are kept whole.
    """
    if content_type != TEXT or len(body) <= PREVIEW_BYTES:
        return body, False
    # A text body is valid UTF-8, so only a character split by the cut at
    # the end is dropped.
    cut = body[:PREVIEW_BYTES].decode(errors="ignore").encode()
    return cut, True
