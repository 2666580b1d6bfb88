"""HTTP API for groups: create, list, members, roles, renames and history.

Members are named by account name in requests and shown with id and name in
responses. Errors use the JSON shape of app.py. The status is 403 when the
caller's role is too low or the caller is not a member, and 404 for an
unknown group or user. It is 409 when a user to add is a member already or
the group would be too large.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from switchboard.api.app import ApiError, CurrentSession, Services
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import GroupId, MessageId, UserId
from switchboard.logic.content import TEXT
from switchboard.logic.groups import SYSTEM, GroupDetails, GroupService
from switchboard.store.base import AlreadyMember, Group, Role, StoredMessage

__all__ = ["router"]

router = APIRouter(prefix="/v1/groups", tags=["groups"])

_GROUP_STATUS = {
    ErrorCode.NOT_A_MEMBER: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.GROUP_NOT_FOUND: 404,
    ErrorCode.GROUP_FULL: 409,
}


class CreateGroupRequest(BaseModel):
    name: str = Field(description="1 to 100 characters")
    members: list[str] = Field(
        default_factory=list, description="Account names; the creator is added"
    )


class AddMembersRequest(BaseModel):
    names: list[str] = Field(min_length=1, description="Account names to add")
    role: Role = Field(default=Role.MEMBER, description="member or admin")


class RenameRequest(BaseModel):
    name: str = Field(description="1 to 100 characters")


class RoleRequest(BaseModel):
    role: Role = Field(description="member or admin")


class MemberView(BaseModel):
    id: int
    name: str
    role: Role
    joined_at: int = Field(description="Milliseconds since the Unix epoch")


class GroupView(BaseModel):
    id: int
    name: str
    created_by: int
    created_at: int = Field(description="Milliseconds since the Unix epoch")


class GroupDetailsView(GroupView):
    members: list[MemberView]


class GroupsResponse(BaseModel):
    groups: list[GroupView]


class GroupMessage(BaseModel):
    id: int
    seq: int | None = Field(
        default=None, description="The message's sequence in the caller's inbox"
    )
    sender: str = Field(serialization_alias="from")
    from_id: int
    group: int
    content_type: int = Field(description="2 for a notice of a group change")
    text: str | None = Field(
        default=None, description="The body, for text (0) and notices (2)"
    )
    body_b64: str | None = Field(default=None, description="Other bodies, base64")
    mentions: list[int]
    sent_at: int = Field(description="Milliseconds since the Unix epoch")
    edited_at: int | None = Field(default=None, description="When it was last edited")
    recalled_at: int | None = Field(
        default=None, description="When its sender recalled it; the body is empty"
    )


class GroupHistoryResponse(BaseModel):
    messages: list[GroupMessage]
    has_more: bool


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _groups(request: Request) -> GroupService:
    """Return the app's GroupService, made on first use."""
    service: GroupService | None = getattr(request.app.state, "groups", None)
    if service is None:
        services = _services(request)
        service = GroupService(services.settings, services.store, services.chat)
        request.app.state.groups = service
    return service


def _api_error(exc: RequestError) -> ApiError:
    status = _GROUP_STATUS.get(exc.code, 400)
    return ApiError(status, exc.code.name.lower(), exc.reason)


async def _user_ids(request: Request, names: list[str]) -> list[UserId]:
    if len(names) > 1000:
        raise ApiError(400, "invalid_argument", "name at most 1000 users at once")
    store = _services(request).store
    ids = []
    for name in dict.fromkeys(names):
        user = await store.get_user_by_name(name)
        if user is None:
            raise ApiError(404, "user_not_found", f"no user named {name[:40]!r}")
        ids.append(user.id)
    return ids


async def _details_view(request: Request, details: GroupDetails) -> GroupDetailsView:
    store = _services(request).store
    members = []
    for member in details.members:
        user = await store.get_user(member.user_id)
        name = "" if user is None else user.name
        members.append(
            MemberView(
                id=member.user_id,
                name=name,
                role=member.role,
                joined_at=member.joined_at,
            )
        )
    return GroupDetailsView(**_group_view(details.group).model_dump(), members=members)


def _group_view(group: Group) -> GroupView:
    return GroupView(
        id=group.id,
        name=group.name,
        created_by=group.created_by,
        created_at=group.created_at,
    )


@router.post("", status_code=201, response_model=GroupDetailsView)
async def create_group(
    request: Request, body: CreateGroupRequest, session: CurrentSession
) -> GroupDetailsView:
    members = await _user_ids(request, body.members)
    try:
        details = await _groups(request).create(session.user_id, body.name, members)
    except RequestError as exc:
        raise _api_error(exc) from exc
    return await _details_view(request, details)


@router.get("", response_model=GroupsResponse)
async def list_groups(request: Request, session: CurrentSession) -> GroupsResponse:
    groups = await _groups(request).groups_of(session.user_id)
    return GroupsResponse(groups=[_group_view(group) for group in groups])


@router.get("/{group_id}", response_model=GroupDetailsView)
async def get_group(
    request: Request, group_id: int, session: CurrentSession
) -> GroupDetailsView:
    try:
        details = await _groups(request).details(session.user_id, GroupId(group_id))
    except RequestError as exc:
        raise _api_error(exc) from exc
    return await _details_view(request, details)


@router.patch("/{group_id}", response_model=GroupView)
async def rename_group(
    request: Request, group_id: int, body: RenameRequest, session: CurrentSession
) -> GroupView:
    try:
        group = await _groups(request).rename(
            session.user_id, GroupId(group_id), body.name
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    return _group_view(group)


@router.post("/{group_id}/members", response_model=GroupDetailsView)
async def add_members(
    request: Request, group_id: int, body: AddMembersRequest, session: CurrentSession
) -> GroupDetailsView:
    users = await _user_ids(request, body.names)
    try:
        details = await _groups(request).add_members(
            session.user_id, GroupId(group_id), users, body.role
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    except AlreadyMember as exc:
        user = await _services(request).store.get_user(exc.user_id)
        name = str(exc.user_id) if user is None else user.name
        raise ApiError(
            409, "already_member", f"{name} is a member of group {group_id} already"
        ) from exc
    return await _details_view(request, details)


@router.delete("/{group_id}/members/{name}", status_code=204)
async def remove_member(
    request: Request, group_id: int, name: str, session: CurrentSession
) -> Response:
    """Remove a member, or leave the group when ``name`` is the caller."""
    (user_id,) = await _user_ids(request, [name])
    try:
        await _groups(request).remove_member(
            session.user_id, GroupId(group_id), user_id
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    return Response(status_code=204)


@router.put("/{group_id}/members/{name}/role", response_model=GroupDetailsView)
async def set_role(
    request: Request,
    group_id: int,
    name: str,
    body: RoleRequest,
    session: CurrentSession,
) -> GroupDetailsView:
    (user_id,) = await _user_ids(request, [name])
    try:
        details = await _groups(request).set_role(
            session.user_id, GroupId(group_id), user_id, body.role
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    return await _details_view(request, details)


@router.get(
    "/{group_id}/messages",
    response_model=GroupHistoryResponse,
    response_model_by_alias=True,
    response_model_exclude_none=True,
)
async def group_history(
    request: Request,
    group_id: int,
    session: CurrentSession,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> GroupHistoryResponse:
    """Page backwards through the group's messages and notices; members only."""
    before_id = None if before is None else MessageId(before)
    try:
        messages, has_more = await _groups(request).history(
            session.user_id, GroupId(group_id), before_id, limit
        )
    except RequestError as exc:
        raise _api_error(exc) from exc
    store = _services(request).store
    seqs = await store.inbox_seqs(session.user_id, [m.id for m in messages])
    names: dict[UserId, str] = {}
    items: list[GroupMessage] = []
    for message in messages:
        if message.sender not in names:
            user = await store.get_user(message.sender)
            names[message.sender] = "" if user is None else user.name
        item = _group_message(message, names[message.sender])
        item.seq = seqs.get(message.id)
        items.append(item)
    return GroupHistoryResponse(messages=items, has_more=has_more)


def _group_message(message: StoredMessage, sender_name: str) -> GroupMessage:
    item = GroupMessage(
        id=message.id,
        sender=sender_name,
        from_id=message.sender,
        group=message.group_id or 0,
        content_type=message.content_type,
        mentions=list(message.mentions),
        sent_at=message.sent_at,
        edited_at=message.edited_at or None,
        recalled_at=message.recalled_at or None,
    )
    if message.content_type in (TEXT, SYSTEM):
        item.text = message.body.decode(errors="replace")
    else:
        item.body_b64 = base64.b64encode(message.body).decode()
    return item
