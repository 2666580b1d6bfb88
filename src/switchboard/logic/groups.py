"""Group management: creating groups, membership, roles and renames.

Every change appends a system notice (content type ``SYSTEM``) to the group in
the same store transaction, and the notice is delivered like any group
message, so each member's devices learn of changes in inbox order. A removed
member gets the notice of its removal as its last message of the group.

Roles, highest first: the owner (one per group) may do everything but leave.
An admin may add members, remove members ranked below it and rename the
group. A member may send and leave.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import GroupId, MessageId, Seq, UserId
from switchboard.logic.chat import ChatService
from switchboard.logic.content import SYSTEM_CONTENT_TYPE
from switchboard.store.base import (
    GROUP_MODE_READ,
    Group,
    GroupChange,
    GroupFull,
    GroupNotFound,
    GroupNotice,
    Member,
    NotMember,
    Role,
    Store,
    StoredMessage,
)

__all__ = ["MAX_NAME_LENGTH", "SYSTEM", "GroupDetails", "GroupService"]

SYSTEM = SYSTEM_CONTENT_TYPE
"""Content type of a system notice: a UTF-8 JSON object with ``event``,
``group``, ``by`` (the acting user) and event fields such as ``users``."""
MAX_NAME_LENGTH = 100
"""Maximum length of a group name, in characters."""

_RANK = {Role.OWNER: 3, Role.ADMIN: 2, Role.MEMBER: 1}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

logger = logging.getLogger("switchboard.logic")


@dataclass(frozen=True, slots=True)
class GroupDetails:
    group: Group
    members: list[Member]


class GroupService:
    """Checks roles and limits, then changes groups through the store."""

    def __init__(self, settings: Settings, store: Store, chat: ChatService) -> None:
        self._settings = settings
        self._store = store
        self._chat = chat

    @property
    def max_members(self) -> int:
        """Largest group size accepted."""
        return self._settings.max_group_size

    # Reads.

    async def details(self, actor: UserId, group_id: GroupId) -> GroupDetails:
        """Return the group and its members; raise unless ``actor`` is one."""
        group = await self._require_group(group_id)
        members = await self._store.list_members(group_id)
        _role_of(members, actor, group_id)
        return GroupDetails(group, members)

    async def groups_of(self, user_id: UserId) -> list[Group]:
        return await self._store.groups_of(user_id)

    async def history(
        self,
        actor: UserId,
        group_id: GroupId,
        before_id: MessageId | None,
        limit: int,
    ) -> tuple[list[StoredMessage], bool]:
        """Page backwards through the group's messages; members only.

        Messages ``actor`` deleted for themselves are left out, and so are
        those of a large group sent before the start of ``actor``'s timeline
        (its join, or group_history_on_join entries before it).
        """
        details = await self.details(actor, group_id)
        messages, more = await self._store.read_group_history(
            group_id, before_id, limit, viewer=actor
        )
        if details.group.mode != GROUP_MODE_READ:
            return messages, more
        first_id = await self._first_visible_id(actor, group_id)
        kept = [message for message in messages if message.id >= first_id]
        if len(kept) < len(messages):
            more = False
        return kept, more

    async def _first_visible_id(self, user: UserId, group_id: GroupId) -> MessageId:
        """Return the id of the first message of a large group the user may
        read; 0 when the user may read the whole timeline and what preceded
        it, because it was a member when the group switched or was created."""
        page = await self._store.read_timeline(group_id, user, Seq(0), 1)
        if page.start_seq <= 1 or not page.entries:
            return MessageId(0)
        return page.entries[0].message.id

    # Changes.

    async def create(
        self, actor: UserId, name: str, members: Sequence[UserId]
    ) -> GroupDetails:
        """Create a group owned by ``actor``, with ``members`` as members."""
        name = _check_name(name)
        users = [user for user in dict.fromkeys(members) if user != actor]
        self._check_size(1 + len(users))
        notice = _notice(actor, "group_created", name=name, users=[actor, *users])
        try:
            change = await self._store.create_group(
                name,
                actor,
                users,
                _now_ms(),
                max_members=self.max_members,
                notice=notice,
                timeline_above=self._settings.large_group_threshold,
                history=self._settings.history_on_join,
            )
        except GroupFull as exc:
            self._check_size(exc.size)
            raise
        await self._deliver(change)
        logger.info(
            "user %d created group %d with %d members",
            actor,
            change.group.id,
            1 + len(users),
        )
        return GroupDetails(
            change.group, await self._store.list_members(change.group.id)
        )

    async def add_members(
        self,
        actor: UserId,
        group_id: GroupId,
        users: Sequence[UserId],
        role: Role = Role.MEMBER,
    ) -> GroupDetails:
        """Add users; admins may add members, only the owner may add admins.

        Raises AlreadyMember (from the store) when one of them is a member.
        """
        details = await self.details(actor, group_id)
        actor_role = _role_of(details.members, actor, group_id)
        if role is Role.OWNER:
            raise RequestError(
                ErrorCode.FORBIDDEN,
                "a group has one owner; add users as member or admin",
            )
        needed = Role.OWNER if role is Role.ADMIN else Role.ADMIN
        _require_rank(actor_role, needed, f"add users as {role.value}")
        users = list(dict.fromkeys(users))
        self._check_size(len(details.members) + len(users))

        notice = _notice(actor, "member_added", users=users, role=role.value)
        try:
            change = await self._store.add_members(
                group_id,
                users,
                role,
                _now_ms(),
                max_members=self.max_members,
                notice=notice,
                timeline_above=self._settings.large_group_threshold,
                history=self._settings.history_on_join,
            )
        except GroupFull as exc:
            self._check_size(exc.size)
            raise
        await self._deliver(change)
        if change.group.mode != details.group.mode:
            logger.info(
                "group %d switched to %s mode at %d members",
                group_id,
                change.group.mode,
                len(details.members) + len(users),
            )
        return GroupDetails(change.group, await self._store.list_members(group_id))

    async def remove_member(
        self, actor: UserId, group_id: GroupId, user: UserId
    ) -> None:
        """Remove ``user``: a leave when it is ``actor``, otherwise a kick.

        The owner cannot leave. A kick needs a role above the target's, and
        at least admin.
        """
        details = await self.details(actor, group_id)
        actor_role = _role_of(details.members, actor, group_id)
        target_role = _role_of(details.members, user, group_id)
        if user == actor:
            if actor_role is Role.OWNER:
                raise RequestError(
                    ErrorCode.FORBIDDEN, "the owner cannot leave the group"
                )
            event = "member_left"
        else:
            _require_rank(actor_role, Role.ADMIN, "remove members")
            if _RANK[actor_role] <= _RANK[target_role]:
                raise RequestError(
                    ErrorCode.FORBIDDEN,
                    f"a group {actor_role.value} cannot remove a {target_role.value}",
                )
            event = "member_removed"

        notice = _notice(actor, event, users=[user])
        change = await self._translate(
            self._store.remove_member(group_id, user, notice=notice)
        )
        await self._deliver(change)

    async def set_role(
        self, actor: UserId, group_id: GroupId, user: UserId, role: Role
    ) -> GroupDetails:
        """Make a member an admin or a plain member; the owner only."""
        details = await self.details(actor, group_id)
        actor_role = _role_of(details.members, actor, group_id)
        _require_rank(actor_role, Role.OWNER, "change roles")
        _role_of(details.members, user, group_id)
        if role is Role.OWNER or user == actor:
            # NOTE: handing over ownership is not supported yet.
            raise RequestError(
                ErrorCode.FORBIDDEN, "the owner's role cannot be given or changed"
            )
        notice = _notice(actor, "role_changed", users=[user], role=role.value)
        change = await self._translate(
            self._store.set_role(group_id, user, role, notice=notice)
        )
        await self._deliver(change)
        return GroupDetails(change.group, await self._store.list_members(group_id))

    async def rename(self, actor: UserId, group_id: GroupId, name: str) -> Group:
        """Rename the group; admins and the owner."""
        name = _check_name(name)
        details = await self.details(actor, group_id)
        _require_rank(
            _role_of(details.members, actor, group_id), Role.ADMIN, "rename the group"
        )
        notice = _notice(actor, "group_renamed", name=name)
        change = await self._translate(
            self._store.rename_group(group_id, name, notice=notice)
        )
        await self._deliver(change)
        return change.group

    # Helpers.

    async def _require_group(self, group_id: GroupId) -> Group:
        group = await self._store.get_group(group_id)
        if group is None:
            raise RequestError(
                ErrorCode.GROUP_NOT_FOUND, f"no group with id {group_id}"
            )
        return group

    async def _translate(self, change: Awaitable[GroupChange]) -> GroupChange:
        """Await a store change; turn a concurrent removal into a RequestError.

        Roles are checked before the write, so a change racing with another
        one (say, the actor being removed meanwhile) is caught here.
        """
        try:
            return await change
        except GroupNotFound as exc:
            raise RequestError(ErrorCode.GROUP_NOT_FOUND, str(exc)) from exc
        except NotMember as exc:
            raise RequestError(ErrorCode.NOT_A_MEMBER, str(exc)) from exc

    async def _deliver(self, change: GroupChange) -> None:
        if change.notice is not None:
            await self._chat.deliver_group(change.notice, origin=None)

    def _check_size(self, size: int) -> None:
        settings = self._settings
        if size > settings.max_group_size:
            raise RequestError(
                ErrorCode.GROUP_FULL,
                f"the group would have {size} members; the maximum is"
                f" {settings.max_group_size}",
            )


def _notice(actor: UserId, event: str, **fields: object) -> GroupNotice:
    """Build the system notice of a change."""

    def body(group: GroupId) -> bytes:
        content = {"event": event, "group": group, **fields, "by": actor}
        return json.dumps(content, separators=(",", ":")).encode()

    return GroupNotice(actor=actor, content_type=SYSTEM, body=body, sent_at=_now_ms())


def _role_of(members: list[Member], user: UserId, group_id: GroupId) -> Role:
    for member in members:
        if member.user_id == user:
            return member.role
    raise RequestError(
        ErrorCode.NOT_A_MEMBER, f"user {user} is not a member of group {group_id}"
    )


def _require_rank(role: Role, needed: Role, action: str) -> None:
    if _RANK[role] < _RANK[needed]:
        raise RequestError(
            ErrorCode.FORBIDDEN,
            f"only a group {needed.value} or higher may {action};"
            f" this user is a {role.value}",
        )


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid group name of {len(name)} characters: use 1 to {MAX_NAME_LENGTH}",
        )
    if _CONTROL.search(name):
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            "invalid group name: it contains a control character such as a"
            " newline; use printable characters",
        )
    if _SURROGATE.search(name):
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            "invalid group name: it contains a character that is not valid Unicode",
        )
    return name


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
