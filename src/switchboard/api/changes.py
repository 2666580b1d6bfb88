"""HTTP API for changes to sent messages: recall, edit and delete-for-me.

``POST /v1/messages/{id}/recall`` recalls a message for everyone,
``PATCH /v1/messages/{id}`` edits its body, and ``DELETE /v1/messages/{id}``
deletes it for the caller only, like the ``Change`` frames of kinds RECALL,
EDIT and DELETE. Each change reaches the devices concerned as a change entry.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, model_validator

from switchboard.api.app import ApiError, CurrentSession, Services
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import UserId
from switchboard.logic.recall import RecallService
from switchboard.store.base import ChangeResult

__all__ = ["router"]

router = APIRouter(prefix="/v1/messages", tags=["messages"])

_STATUS = {
    ErrorCode.MESSAGE_NOT_FOUND: 404,
    ErrorCode.NOT_SENDER: 403,
    ErrorCode.WINDOW_PASSED: 403,
    ErrorCode.MESSAGE_RECALLED: 409,
}


class EditRequest(BaseModel):
    text: str | None = Field(default=None, description="The new text of a text message")
    body_b64: str | None = Field(
        default=None, description="The new body of another content type, base64"
    )

    @model_validator(mode="after")
    def _one_body(self) -> EditRequest:
        if (self.text is None) == (self.body_b64 is None):
            raise ValueError("give either text or body_b64")
        return self


class ChangeResponse(BaseModel):
    message_id: int = Field(description="The changed message")
    changed: bool = Field(description="False when the change was made before")
    id: int = Field(description="The change entry's message id; 0 when unchanged")
    seq: int = Field(
        description="The change entry's seq in the caller's inbox; 0 when unchanged"
        " or for a large group's message, whose change is a timeline entry"
    )
    changed_at: int = Field(
        description="Milliseconds since the Unix epoch; 0 when unchanged"
    )
    unread: int = Field(
        default=0, description="Unread messages left in the conversation"
    )


def _recall_service(request: Request) -> RecallService:
    services: Services = request.app.state.services
    return services.chat.recall


def _response(message_id: int, user_id: UserId, result: ChangeResult) -> ChangeResponse:
    entry = result.entries.get(user_id)
    if result.timeline is not None:
        # A large group's change is a timeline entry, in no inbox.
        change = result.timeline.message
        return ChangeResponse(
            message_id=message_id,
            changed=True,
            id=change.id,
            seq=0,
            changed_at=change.sent_at,
        )
    if entry is None:
        return ChangeResponse(
            message_id=message_id, changed=False, id=0, seq=0, changed_at=0
        )
    return ChangeResponse(
        message_id=message_id,
        changed=True,
        id=entry.message.id,
        seq=entry.seq,
        changed_at=entry.message.sent_at,
        unread=entry.unread,
    )


async def _apply(change: Awaitable[ChangeResult]) -> ChangeResult:
    """Await a change; give its rejections the statuses of this API.

    Other codes (INVALID_MESSAGE, RATE_LIMITED) go to the app's handler,
    which adds Retry-After to RATE_LIMITED.
    """
    try:
        return await change
    except RequestError as exc:
        status = _STATUS.get(exc.code)
        if status is None:
            raise
        raise ApiError(status, exc.code.name.lower(), exc.reason) from exc


@router.post("/{message_id}/recall", response_model=ChangeResponse)
async def recall_message(
    request: Request, message_id: int, session: CurrentSession
) -> ChangeResponse:
    """Recall a message the caller sent, for everyone, within the window."""
    result = await _apply(_recall_service(request).recall(session.user_id, message_id))
    return _response(message_id, session.user_id, result)


@router.patch("/{message_id}", response_model=ChangeResponse)
async def edit_message(
    request: Request, message_id: int, body: EditRequest, session: CurrentSession
) -> ChangeResponse:
    """Replace the body of a message the caller sent, for everyone."""
    if body.text is not None:
        new_body = body.text.encode(errors="surrogatepass")
    else:
        try:
            new_body = base64.b64decode(body.body_b64 or "", validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise ApiError(
                400, "invalid_argument", f"body_b64 is not valid base64: {exc}"
            ) from exc
    result = await _apply(
        _recall_service(request).edit(session.user_id, message_id, new_body)
    )
    return _response(message_id, session.user_id, result)


@router.delete("/{message_id}", response_model=ChangeResponse)
async def delete_message(
    request: Request, message_id: int, session: CurrentSession
) -> ChangeResponse:
    """Delete a message for the caller only, on all of the caller's devices."""
    result = await _apply(_recall_service(request).delete(session.user_id, message_id))
    return _response(message_id, session.user_id, result)
