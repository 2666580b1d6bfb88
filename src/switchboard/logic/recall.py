"""Recall, edit and delete-for-me of sent messages.

The sender may recall a message for everyone within ``recall_window``
seconds of sending it, and edit it within ``edit_window`` (0: no limit).
Any user who holds a message may delete it for themselves. Each change
appends a change entry to every inbox it concerns, in the transaction that
changes the message, and the entry is pushed to every online device of those
users. A device that was offline gets the entry on its next sync and replaces
the message it shows. A sync of the message's own entry returns it as it is
now: recalled, edited or deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import MessageId, UserId
from switchboard.logic.content import validate_body
from switchboard.logic.wire import to_wire_message
from switchboard.protocol.frames import encode
from switchboard.store.base import (
    ChangeResult,
    HeldMessage,
    MessageNotFound,
    MessageRecalled,
    Store,
)

if TYPE_CHECKING:
    from switchboard.logic.chat import ChatService

__all__ = ["RecallService"]

logger = logging.getLogger("switchboard.logic")


class RecallService:
    """Checks who may change a message and when, then changes and delivers."""

    def __init__(self, settings: Settings, store: Store, chat: ChatService) -> None:
        self._settings = settings
        self._store = store
        self._chat = chat

    async def recall(self, user_id: UserId, message_id: int) -> ChangeResult:
        """Recall a message the user sent, for everyone who holds it.

        Recalling it again changes nothing. Raises RequestError
        MESSAGE_NOT_FOUND, INVALID_ARGUMENT (a group notice), NOT_SENDER,
        WINDOW_PASSED or RATE_LIMITED.
        """
        held = await self._held(user_id, message_id)
        self._check_sender(user_id, held, "recall")
        if held.message.recalled_at:
            return ChangeResult(held.message, {})
        now = _now_ms()
        self._check_window(held, now, self._settings.recall_window, "recalled")
        self._chat.limit_rate(user_id)

        result = await self._translate(
            self._store.recall_message(user_id, MessageId(message_id), now)
        )
        await self._deliver(result)
        logger.info("user %d recalled message %d", user_id, message_id)
        return result

    async def edit(self, user_id: UserId, message_id: int, body: bytes) -> ChangeResult:
        """Replace the body of a message the user sent, for everyone.

        The body must be valid for the message's content type. An edit to the
        current body changes nothing. Raises RequestError MESSAGE_NOT_FOUND,
        INVALID_ARGUMENT, NOT_SENDER, MESSAGE_RECALLED, WINDOW_PASSED,
        INVALID_MESSAGE or RATE_LIMITED.
        """
        held = await self._held(user_id, message_id)
        self._check_sender(user_id, held, "edit")
        message = held.message
        if message.recalled_at:
            raise RequestError(
                ErrorCode.MESSAGE_RECALLED,
                f"message {message_id} was recalled, so it cannot be edited",
            )
        self._check_body(message.content_type, body)
        if body == message.body:
            return ChangeResult(message, {})
        now = _now_ms()
        self._check_window(held, now, self._settings.edit_window, "edited")
        self._chat.limit_rate(user_id)

        result = await self._translate(
            self._store.edit_message(user_id, MessageId(message_id), body, now)
        )
        await self._deliver(result)
        return result

    async def delete(self, user_id: UserId, message_id: int) -> ChangeResult:
        """Delete a message for the user only, on all of the user's devices.

        Deleting it again changes nothing. Raises RequestError
        MESSAGE_NOT_FOUND or RATE_LIMITED.
        """
        held = await self._held(user_id, message_id)
        if held.deleted:
            return ChangeResult(held.message, {})
        self._chat.limit_rate(user_id)

        result = await self._translate(
            self._store.delete_message_for(user_id, MessageId(message_id), _now_ms())
        )
        await self._deliver(result)
        return result

    async def _held(self, user_id: UserId, message_id: int) -> HeldMessage:
        held = await self._store.get_message(MessageId(message_id), user_id)
        if held is None:
            raise RequestError(
                ErrorCode.MESSAGE_NOT_FOUND,
                f"no message with id {message_id} in this user's conversations",
            )
        return held

    def _check_sender(self, user_id: UserId, held: HeldMessage, action: str) -> None:
        message = held.message
        if held.notice:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT,
                f"message {message.id} is a group notice, which nobody may {action}",
            )
        if message.sender != user_id:
            raise RequestError(
                ErrorCode.NOT_SENDER,
                f"only the sender may {action} message {message.id}; user"
                f" {message.sender} sent it",
            )

    def _check_window(
        self, held: HeldMessage, now: int, window: float, done: str
    ) -> None:
        age = (now - held.message.sent_at) / 1000
        if window > 0 and age > window:
            raise RequestError(
                ErrorCode.WINDOW_PASSED,
                f"message {held.message.id} was sent {age:.0f} s ago; a message"
                f" can be {done} within {window:g} s of sending",
            )

    def _check_body(self, content_type: int, body: bytes) -> None:
        limit = self._settings.max_body_size
        if len(body) > limit:
            raise RequestError(
                ErrorCode.INVALID_MESSAGE,
                f"body of {len(body)} bytes exceeds the limit of {limit} bytes",
            )
        validate_body(content_type, body)

    async def _translate(self, change: Awaitable[ChangeResult]) -> ChangeResult:
        """Await a store change; turn its rejections into RequestError.

        The checks above ran on an earlier read, so a change racing with
        another one (a recall before an edit) is caught here.
        """
        try:
            return await change
        except MessageNotFound as exc:
            raise RequestError(ErrorCode.MESSAGE_NOT_FOUND, str(exc)) from exc
        except MessageRecalled as exc:
            raise RequestError(
                ErrorCode.MESSAGE_RECALLED, f"{exc}, so it cannot be edited"
            ) from exc

    async def _deliver(self, result: ChangeResult) -> None:
        if result.timeline is not None:
            await self._chat.timelines.deliver(result.timeline, None)
        for user_id, entry in result.entries.items():
            await self._chat.push(user_id, encode(to_wire_message(entry)))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
