"""HTTP calls for groups: create, list, members, roles, renames and history.

Groups are named by id and users by account name, as in the HTTP API
(``/v1/groups``). Errors are those of :class:`~switchboard.client.http.ApiClient`:
GroupNotFound (404), Forbidden (403, for a role too low or a caller who is
not a member), UserNotFound for an unknown name, and ApiError with status 409
and code ``already_member`` or ``group_full``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from switchboard.client.http import ApiClient, history_message
from switchboard.client.models import Group, GroupMember, HistoryPage

__all__ = ["ROLES", "GroupApi"]

ROLES = ("member", "admin")
"""Roles a group member can be given; a group's one owner is its creator."""


class GroupApi:
    """Calls the group endpoints through ``api``."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    async def create(self, name: str, members: Sequence[str]) -> Group:
        body = await self._api.request_json(
            "POST", "/v1/groups", json={"name": name, "members": list(members)}
        )
        return _group(body)

    async def list_mine(self) -> list[Group]:
        body = await self._api.request_json("GET", "/v1/groups")
        return [_group(item) for item in body["groups"]]

    async def get(self, group_id: int) -> Group:
        return _group(await self._api.request_json("GET", _path(group_id)))

    async def add_members(
        self, group_id: int, names: Sequence[str], role: str
    ) -> Group:
        body = await self._api.request_json(
            "POST",
            _path(group_id, "members"),
            json={"names": list(names), "role": _checked_role(role)},
        )
        return _group(body)

    async def remove_member(self, group_id: int, name: str) -> None:
        await self._api.request_json(
            "DELETE", _path(group_id, "members", quote(name, safe=""))
        )

    async def rename(self, group_id: int, name: str) -> Group:
        body = await self._api.request_json(
            "PATCH", _path(group_id), json={"name": name}
        )
        return _group(body)

    async def set_role(self, group_id: int, name: str, role: str) -> Group:
        body = await self._api.request_json(
            "PUT",
            _path(group_id, "members", quote(name, safe=""), "role"),
            json={"role": _checked_role(role)},
        )
        return _group(body)

    async def history(
        self, group_id: int, my_id: int, *, before: int | None, limit: int
    ) -> HistoryPage:
        params: dict[str, int] = {"limit": limit}
        if before is not None:
            params["before"] = before
        body = await self._api.request_json(
            "GET", _path(group_id, "messages"), params=params
        )
        messages = [history_message(item, my_id) for item in body["messages"]]
        return HistoryPage(messages=messages, has_more=bool(body["has_more"]))


def _path(group_id: int, *parts: str) -> str:
    if group_id <= 0:
        raise ValueError(f"invalid group id {group_id}: group ids start at 1")
    return "/".join(("/v1/groups", str(group_id), *parts))


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"invalid role {role!r}: use 'member' or 'admin'")
    return role


def _group(item: dict[str, Any]) -> Group:
    members = tuple(
        GroupMember(
            id=int(member["id"]),
            name=str(member["name"]),
            role=str(member["role"]),
            joined_at=int(member["joined_at"]),
        )
        for member in item.get("members") or ()
    )
    return Group(
        id=int(item["id"]),
        name=str(item["name"]),
        created_by=int(item["created_by"]),
        created_at=int(item["created_at"]),
        members=members,
    )
