"""HTTP API for read positions and group read counts.

``POST /v1/conversations/{peer}/read`` and ``POST /v1/groups/{id}/read`` move
the caller's read position, like a ``Change`` frame of kind READ: every device
of the caller gets the read entry, and the owners of the read messages get a
``ReadReceipt``. ``GET /v1/groups/{id}/reads`` counts the readers of messages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from switchboard.api.app import ApiError, CurrentSession, Services
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import GroupId
from switchboard.logic.receipts import MAX_READ_COUNT_IDS
from switchboard.store.base import ConversationKey, ReadResult

__all__ = ["router"]

router = APIRouter(tags=["receipts"])

_STATUS = {
    ErrorCode.NOT_A_MEMBER: 403,
    ErrorCode.GROUP_NOT_FOUND: 404,
    ErrorCode.UNKNOWN_RECIPIENT: 404,
}


class ReadRequest(BaseModel):
    message_id: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="Read every message up to this id; null or absent: all",
    )


class ReadResponse(BaseModel):
    read_id: int = Field(description="The read position now")
    unread: int = Field(description="Unread messages left in the conversation")
    seq: int = Field(
        description="The read entry's seq in the caller's inbox; 0 when the"
        " position did not move"
    )


class ReadCountView(BaseModel):
    id: int
    read: int = Field(description="Members other than the sender who read it")
    members: int = Field(
        description="Members other than the sender who joined before it"
    )


class ReadCountsResponse(BaseModel):
    reads: list[ReadCountView]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _api_error(exc: RequestError) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 400), exc.code.name.lower(), exc.reason)


def _response(result: ReadResult) -> ReadResponse:
    seq = 0 if result.entry is None else result.entry.seq
    return ReadResponse(read_id=result.read_id, unread=result.unread, seq=seq)


@router.post("/v1/conversations/{peer}/read", response_model=ReadResponse)
async def read_conversation(
    request: Request, peer: str, body: ReadRequest, session: CurrentSession
) -> ReadResponse:
    """Read the one-to-one conversation with the user named ``peer``."""
    services = _services(request)
    user = await services.store.get_user_by_name(peer)
    if user is None:
        raise ApiError(404, "user_not_found", f"no user named {peer[:40]!r}")
    try:
        result = await services.chat.receipts.mark_read(
            session.user_id, ConversationKey(peer=user.id), body.message_id or 0
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    return _response(result)


@router.post("/v1/groups/{group_id}/read", response_model=ReadResponse)
async def read_group(
    request: Request, group_id: int, body: ReadRequest, session: CurrentSession
) -> ReadResponse:
    """Read the group's conversation; members and former members."""
    try:
        result = await _services(request).chat.receipts.mark_read(
            session.user_id,
            ConversationKey(group=GroupId(group_id)),
            body.message_id or 0,
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    return _response(result)


@router.get("/v1/groups/{group_id}/reads", response_model=ReadCountsResponse)
async def read_counts(
    request: Request,
    group_id: int,
    session: CurrentSession,
    id: Annotated[list[int], Query(max_length=MAX_READ_COUNT_IDS)],
) -> ReadCountsResponse:
    """Count the readers of the group messages ``id``; members only.

    Ids that are not messages of the group are left out of the response.
    """
    try:
        counts = await _services(request).chat.receipts.read_counts(
            session.user_id, GroupId(group_id), id
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    views = [
        ReadCountView(id=count.message_id, read=count.read, members=count.members)
        for count in counts
    ]
    return ReadCountsResponse(reads=views)
