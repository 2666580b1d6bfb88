"""Read positions and read receipts.

A user reads a conversation up to a message, over a ``Change`` frame of kind
READ or over HTTP. The server moves the user's read position, counts the
unread messages again and appends a read entry to the user's inbox, which
every device of the user receives, now or on its next sync. The users whose
messages became read get a ``ReadReceipt`` frame on their online devices:
the peer of a one-to-one conversation, or the senders in a group. Offline,
they learn the peer's position from the conversation list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import GroupId, MessageId, UserId
from switchboard.logic.wire import to_wire_message
from switchboard.protocol import pb
from switchboard.protocol.frames import encode
from switchboard.store.base import (
    GROUP_MODE_READ,
    ConversationKey,
    NotMember,
    ReadCount,
    ReadResult,
    Store,
)

if TYPE_CHECKING:
    from switchboard.logic.chat import ChatService

__all__ = ["MAX_READ_COUNT_IDS", "ReceiptService", "conversation_of"]

MAX_READ_COUNT_IDS: Final = 100
"""Maximum number of messages in one request for read counts."""


def conversation_of(peer: int, group: int) -> ConversationKey:
    """Return the conversation named by a request's ``peer`` or ``group``.

    Raises RequestError INVALID_ARGUMENT unless exactly one of them is set.
    """
    if bool(peer) == bool(group):
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid conversation (peer {peer}, group {group}): set either peer"
            " or group",
        )
    return ConversationKey(peer=UserId(peer), group=GroupId(group))


class ReceiptService:
    """Moves read positions, pushes read entries and receipts, counts readers."""

    def __init__(self, store: Store, chat: ChatService) -> None:
        self._store = store
        self._chat = chat

    async def mark_read(
        self, user_id: UserId, key: ConversationKey, up_to: int
    ) -> ReadResult:
        """Read the conversation up to message ``up_to``, 0 for the latest.

        Raises RequestError UNKNOWN_RECIPIENT for an unknown peer,
        GROUP_NOT_FOUND for an unknown group and NOT_A_MEMBER for a group the
        user never was a member of.
        """
        large = await self._check_exists(key)
        if large:
            return await self._mark_timeline_read(user_id, key.group, up_to)
        try:
            result = await self._store.mark_read(
                user_id, key, MessageId(up_to) if up_to else None, _now_ms()
            )
        except NotMember as exc:
            raise RequestError(ErrorCode.NOT_A_MEMBER, str(exc)) from exc
        if result.entry is None:
            return result

        # Every device of the reader, then the owners of the read messages.
        await self._chat.push(user_id, encode(to_wire_message(result.entry)))
        receipt = pb.ReadReceipt(
            reader=user_id,
            group=key.group,
            message_id=result.read_id,
            read_at=result.entry.message.sent_at,
        )
        data = encode(receipt)
        for owner in await self._still_present(key, result.notify):
            await self._chat.push(owner, data)
        return result

    async def _still_present(
        self, key: ConversationKey, owners: Sequence[UserId]
    ) -> list[UserId]:
        """Return the ``owners`` who may hear of the conversation: in a group,
        its current members; a removed member hears nothing more of it."""
        if not key.group or not owners:
            return list(owners)
        members = {m.user_id for m in await self._store.list_members(key.group)}
        return [owner for owner in owners if owner in members]

    async def _mark_timeline_read(
        self, user_id: UserId, group_id: GroupId, up_to: int
    ) -> ReadResult:
        """Read a large group's timeline: the read entry goes to every device
        of the reader and a ReadReceipt to the senders of the messages read."""
        try:
            result = await self._store.mark_timeline_read(
                user_id, group_id, MessageId(up_to) if up_to else None, _now_ms()
            )
        except NotMember as exc:
            raise RequestError(ErrorCode.NOT_A_MEMBER, str(exc)) from exc
        if result.entry is not None:
            await self._chat.push(user_id, encode(to_wire_message(result.entry)))
        owners = await self._still_present(
            ConversationKey(group=group_id), result.notify
        )
        if owners:
            receipt = pb.ReadReceipt(
                reader=user_id,
                group=group_id,
                message_id=result.read_id,
                read_at=_now_ms(),
            )
            await self._chat.timelines.push_to(owners, encode(receipt), None)
        return result

    async def read_counts(
        self, user_id: UserId, group_id: GroupId, message_ids: Sequence[int]
    ) -> list[ReadCount]:
        """Return how many members read each message; current members only.

        Raises RequestError INVALID_ARGUMENT for more than MAX_READ_COUNT_IDS
        ids, GROUP_NOT_FOUND and NOT_A_MEMBER.
        """
        if len(message_ids) > MAX_READ_COUNT_IDS:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT,
                f"{len(message_ids)} message ids requested; ask for at most"
                f" {MAX_READ_COUNT_IDS} at once",
            )
        await self._check_exists(ConversationKey(group=group_id))
        members = await self._store.list_members(group_id)
        if all(member.user_id != user_id for member in members):
            raise RequestError(
                ErrorCode.NOT_A_MEMBER,
                f"user {user_id} is not a member of group {group_id}",
            )
        ids = [MessageId(message_id) for message_id in message_ids]
        return await self._store.group_read_counts(group_id, ids)

    async def _check_exists(self, key: ConversationKey) -> bool:
        """Raise unless the conversation's peer or group exists; return whether
        it is a large group, read through its timeline."""
        if key.group:
            group = await self._store.get_group(key.group)
            if group is None:
                raise RequestError(
                    ErrorCode.GROUP_NOT_FOUND, f"no group with id {key.group}"
                )
            return group.mode == GROUP_MODE_READ
        if await self._store.get_user(key.peer) is None:
            raise RequestError(
                ErrorCode.UNKNOWN_RECIPIENT, f"no user with id {key.peer}"
            )
        return False


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
