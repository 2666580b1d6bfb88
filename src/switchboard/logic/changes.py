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
from switchboard.logic.recall import RecallService
from switchboard.logic.receipts import ReceiptService, conversation_of
from switchboard.protocol import pb
from switchboard.protocol.frames import encode
from switchboard.store.base import InboxEntry

if TYPE_CHECKING:
    from switchboard.logic.chat import ChatService

__all__ = ["ChangeService"]


class ChangeService:
    """Handles ``Change`` frames by their kind."""

    def __init__(
        self, chat: ChatService, receipts: ReceiptService, recall: RecallService
    ) -> None:
        self._chat = chat
        self._receipts = receipts
        self._recall = recall

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
        user_id, message_id = item.user_id, request.message_id
        # A change may follow the Send of its message on the same connection.
        await self._chat.wait_device_sends(user_id, item.device)
        if request.kind == pb.CHANGE_RECALL:
            result = await self._recall.recall(user_id, message_id)
        elif request.kind == pb.CHANGE_EDIT:
            result = await self._recall.edit(user_id, message_id, request.body)
        elif request.kind == pb.CHANGE_DELETE:
            result = await self._recall.delete(user_id, message_id)
        else:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT,
                f"invalid change kind {request.kind}: use 1 (read), 2 (recall),"
                " 3 (edit) or 4 (delete)",
            )
        if result.timeline is not None:
            # A large group's change is a timeline entry, in no inbox.
            change = result.timeline.message
            return pb.ChangeAck(
                request_id=request.request_id, id=change.id, changed_at=change.sent_at
            )
        return _message_ack(request.request_id, result.entries.get(user_id))

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


def _message_ack(request_id: int, entry: InboxEntry | None) -> pb.ChangeAck:
    """Build the ChangeAck of a recall, edit or delete from the user's entry."""
    ack = pb.ChangeAck(request_id=request_id)
    if entry is not None:
        ack.seq = entry.seq
        ack.id = entry.message.id
        ack.changed_at = entry.message.sent_at
        ack.unread = entry.unread
    return ack
