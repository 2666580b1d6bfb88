"""``Change`` frames: a client changes a conversation or a message.

Each ``ChangeRequest`` carries a client-chosen ``request_id``. The server
replies with a ``ChangeAck`` or a non-fatal ``Error``, both carrying that id.
A change that moves something appends a change entry to every inbox it
concerns and pushes it to every online device of those users, the acting
connection included, before the ``ChangeAck``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.bus.base import Inbound
from switchboard.errors import ErrorCode, RequestError
from switchboard.logic.receipts import ReceiptService, conversation_of
from switchboard.protocol import pb
from switchboard.protocol.frames import encode

if TYPE_CHECKING:
    from switchboard.logic.chat import ChatService

__all__ = ["ChangeService"]


class ChangeService:
    """Handles ``Change`` frames by their kind."""

    def __init__(self, chat: ChatService, receipts: ReceiptService) -> None:
        self._chat = chat
        self._receipts = receipts

    async def handle(self, item: Inbound) -> None:
        """Apply one ChangeRequest and reply with a ChangeAck or an Error."""
        request = pb.ChangeRequest.FromString(item.payload)
        try:
            ack = await self._apply(item, request)
        except RequestError as exc:
            self._chat.reject(item, exc, request_id=request.request_id)
            return
        self._chat.reply(item, encode(ack))

    async def _apply(self, item: Inbound, request: pb.ChangeRequest) -> pb.ChangeAck:
        if request.kind == pb.CHANGE_READ:
            return await self._read(item, request)
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid change kind {request.kind}: use {pb.CHANGE_READ} (read)",
        )

    async def _read(self, item: Inbound, request: pb.ChangeRequest) -> pb.ChangeAck:
        key = conversation_of(request.peer, request.group)
        result = await self._receipts.mark_read(item.user_id, key, request.message_id)
        ack = pb.ChangeAck(
            request_id=request.request_id,
            unread=result.unread,
            read_id=result.read_id,
        )
        if result.entry is not None:
            ack.seq = result.entry.seq
            ack.id = result.entry.message.id
            ack.changed_at = result.entry.message.sent_at
        return ack
