"""HTTP API for search: ``GET /v1/search`` over the caller's own inbox."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from switchboard.api.app import ApiError, CurrentSession, Services
from switchboard.errors import RequestError
from switchboard.ids import GroupId, UserId
from switchboard.logic import search as searching
from switchboard.logic.content import SYSTEM_CONTENT_TYPE, TEXT
from switchboard.store.base import InboxEntry, Store

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["search"])


class SearchMatch(BaseModel):
    id: int
    seq: int = Field(description="The message's sequence in the caller's inbox")
    sender: str = Field(serialization_alias="from")
    from_id: int
    recipient: str | None = Field(default=None, serialization_alias="to")
    to_id: int | None = None
    group: int | None = None
    group_name: str | None = None
    content_type: int
    text: str | None = None
    body_b64: str | None = None
    mentions: list[int]
    sent_at: int = Field(description="Milliseconds since the Unix epoch")


class SearchResponse(BaseModel):
    messages: list[SearchMatch] = Field(description="Matches, newest first")
    next_cursor: str | None = Field(
        default=None, description="Pass as cursor for the next page; null at the end"
    )


@router.get(
    "/search",
    response_model=SearchResponse,
    response_model_by_alias=True,
    response_model_exclude_none=True,
)
async def search_messages(
    request: Request,
    session: CurrentSession,
    q: Annotated[str, Query(description="Words to find; each matches word starts")],
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    with_: Annotated[
        str | None,
        Query(alias="with", description="A user name: search only that conversation"),
    ] = None,
    group: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> SearchResponse:
    """Find the caller's messages that contain every word of ``q``."""
    store = _store(request)
    peer_id = None
    if with_ is not None:
        peer = await store.get_user_by_name(with_)
        if peer is None:
            raise ApiError(404, "user_not_found", f"no user named {with_[:40]!r}")
        peer_id = peer.id
    try:
        page = await searching.search(
            store,
            session.user_id,
            q,
            cursor=cursor,
            limit=limit,
            peer_id=peer_id,
            group_id=None if group is None else GroupId(group),
        )
    except RequestError as exc:
        raise ApiError(400, exc.code.name.lower(), exc.reason) from exc
    matches = [await _match(store, entry) for entry in page.entries]
    return SearchResponse(messages=matches, next_cursor=page.next_cursor)


def _store(request: Request) -> Store:
    services: Services = request.app.state.services
    return services.store


async def _name(store: Store, user_id: UserId) -> str:
    user = await store.get_user(user_id)
    return "" if user is None else user.name


async def _match(store: Store, entry: InboxEntry) -> SearchMatch:
    # NOTE: one name lookup per user and group of each match; a page has at
    # most 100 matches.
    message = entry.message
    match = SearchMatch(
        id=message.id,
        seq=entry.seq,
        sender=await _name(store, message.sender),
        from_id=message.sender,
        content_type=message.content_type,
        mentions=list(message.mentions),
        sent_at=message.sent_at,
    )
    if message.group_id is not None:
        group = await store.get_group(message.group_id)
        match.group = message.group_id
        match.group_name = None if group is None else group.name
    else:
        match.recipient = await _name(store, message.recipient)
        match.to_id = message.recipient
    if message.content_type in (TEXT, SYSTEM_CONTENT_TYPE):
        match.text = message.body.decode(errors="replace")
    else:
        match.body_b64 = base64.b64encode(message.body).decode()
    return match
