"""HTTP API for the conversation list: ``GET /v1/conversations``.

The same list a socket client gets after ``Connected``, as JSON: one entry
per one-to-one conversation and group, newest last message first, with the
unread counts and read positions.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from switchboard.api.app import CurrentSession, Services
from switchboard.ids import UserId
from switchboard.logic.content import TEXT
from switchboard.logic.conversations import preview
from switchboard.logic.groups import SYSTEM
from switchboard.store.base import Conversation, InboxEntry

__all__ = ["router"]

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


class LastMessage(BaseModel):
    id: int
    seq: int = Field(description="The message's sequence in this user's inbox")
    sender: str = Field(serialization_alias="from")
    from_id: int
    content_type: int
    text: str | None = Field(
        default=None, description="A preview of the body, for text and notices"
    )
    body_b64: str | None = Field(default=None, description="Other bodies, base64")
    truncated: bool = Field(description="The text was cut to a preview")
    sent_at: int = Field(description="Milliseconds since the Unix epoch")


class ConversationView(BaseModel):
    peer_id: int = Field(description="The other user; 0 for a group")
    group_id: int = Field(description="The group; 0 for a one-to-one conversation")
    name: str = Field(description="The peer's account name or the group's name")
    unread: int = Field(description="Messages from others after read_id")
    read_id: int = Field(description="Every message up to this id is read")
    peer_read_id: int = Field(description="The peer's read_id; 0 for groups")
    last: LastMessage


class ConversationsResponse(BaseModel):
    conversations: list[ConversationView]
    has_more: bool = Field(description="Older conversations exist; pass before")
    head_seq: int = Field(description="The inbox head the list reflects")
    total_unread: int = Field(description="Unread messages over all conversations")


@router.get(
    "",
    response_model=ConversationsResponse,
    response_model_by_alias=True,
    response_model_exclude_none=True,
)
async def list_conversations(
    request: Request,
    session: CurrentSession,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConversationsResponse:
    """List the caller's conversations, most recent first.

    ``before`` is the ``last.id`` of the final entry of the previous page.
    """
    services: Services = request.app.state.services
    page = await services.chat.conversations.page(session.user_id, before or 0, limit)
    names: dict[UserId, str] = {}
    views = []
    for conversation in page.conversations:
        sender = conversation.last.message.sender
        if sender not in names:
            user = await services.store.get_user(sender)
            names[sender] = "" if user is None else user.name
        views.append(_view(conversation, names[sender]))
    return ConversationsResponse(
        conversations=views,
        has_more=page.has_more,
        head_seq=page.head_seq,
        total_unread=page.total_unread,
    )


def _view(conversation: Conversation, sender_name: str) -> ConversationView:
    return ConversationView(
        peer_id=conversation.key.peer,
        group_id=conversation.key.group,
        name=conversation.name,
        unread=conversation.unread,
        read_id=conversation.read_id,
        peer_read_id=conversation.peer_read_id,
        last=_last_message(conversation.last, sender_name),
    )


def _last_message(entry: InboxEntry, sender_name: str) -> LastMessage:
    message = entry.message
    body, truncated = preview(message.content_type, message.body)
    item = LastMessage(
        id=message.id,
        seq=entry.seq,
        sender=sender_name,
        from_id=message.sender,
        content_type=message.content_type,
        truncated=truncated,
        sent_at=message.sent_at,
    )
    if message.content_type in (TEXT, SYSTEM):
        item.text = body.decode(errors="replace")
    else:
        item.body_b64 = base64.b64encode(body).decode()
    return item
