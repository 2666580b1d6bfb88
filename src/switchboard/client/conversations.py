"""Sans-IO conversation list of one device, kept current from the inbox.

The server sends the list right after ``Connected``, and every inbox entry
after it carries the unread count of its conversation once the entry is
applied (docs/protocol.md, "Keeping counts exact"). :class:`ConversationBook`
keeps, per conversation, the count with the sequence it came from, and takes
a newer one only. The order in which pushes, sync pages and lists arrive
therefore does not change the result, and every device of a user ends with
the same counts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Final

from switchboard.client.models import (
    Conversation,
    ConversationPage,
    ConversationRead,
    InboxItem,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageRecalled,
    ReadReceipt,
)

__all__ = ["ConversationBook"]

Key = tuple[int, int]
"""``(peer_id, group_id)``."""

NOTICE: Final = 2
"""Content type of the server's group notices, whose body is UTF-8 JSON."""


@dataclass(slots=True)
class _State:
    conversation: Conversation
    counted_at: int
    """Sequence the unread count and read position come from."""
    last_seq: int
    """Sequence of ``conversation.last``; 0 when unknown."""
    named_at: int = 0
    """Sequence of the group notice that gave the name; 0 for none."""


class ConversationBook:
    """Conversations by ``(peer_id, group_id)``, with exact unread counts."""

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[Key, _State] = {}

    def __len__(self) -> int:
        return len(self._states)

    def get(self, key: Key) -> Conversation | None:
        state = self._states.get(key)
        return None if state is None else state.conversation

    def conversations(self) -> list[Conversation]:
        """Return every known conversation, the most recent last message first."""
        states = sorted(
            self._states.values(),
            key=lambda state: (
                state.conversation.last.id if state.conversation.last is not None else 0
            ),
            reverse=True,
        )
        return [state.conversation for state in states]

    @property
    def total_unread(self) -> int:
        """Unread messages over the known conversations."""
        return sum(state.conversation.unread for state in self._states.values())

    def clear(self) -> None:
        self._states.clear()

    def apply_page(self, page: ConversationPage) -> None:
        """Take the counts and last messages of a list page that are newer."""
        for conversation in page.conversations:
            state = self._states.get(conversation.key)
            last_seq = conversation.last.seq if conversation.last is not None else 0
            if state is None:
                self._states[conversation.key] = _State(
                    conversation, page.head_seq, last_seq, page.head_seq
                )
                continue
            current = state.conversation
            if page.head_seq >= state.counted_at:
                current = dataclasses.replace(
                    current,
                    unread=conversation.unread,
                    read_id=max(current.read_id, conversation.read_id),
                )
                state.counted_at = page.head_seq
            if last_seq >= state.last_seq:
                current = dataclasses.replace(
                    current, last=conversation.last, truncated=conversation.truncated
                )
                state.last_seq = last_seq
            if conversation.name and page.head_seq >= state.named_at:
                current = dataclasses.replace(current, name=conversation.name)
                state.named_at = page.head_seq
            state.conversation = dataclasses.replace(
                current,
                peer_read_id=max(current.peer_read_id, conversation.peer_read_id),
            )

    def apply_entry(self, item: InboxItem, unread: int | None) -> None:
        """Apply one inbox entry; ``unread`` is None when the entry carries no
        count (the entry a device builds for its own ``SendAck``)."""
        key = _key_of(item)
        state = self._states.get(key)
        if state is None:
            empty = Conversation(key[0], key[1], "", None, 0, 0, 0)
            state = self._states[key] = _State(empty, 0, 0)
        current = state.conversation
        if unread is not None and item.seq > state.counted_at:
            current = dataclasses.replace(current, unread=unread)
            state.counted_at = item.seq
        state.conversation = self._changed(state, current, item)

    def apply_timeline_message(self, item: Message) -> None:
        """Apply a message of a large group's timeline.

        Such a message carries no unread count, so a newer message of another
        user adds one to the count, until the next list page replaces it.
        """
        key = item.conversation
        state = self._states.get(key)
        if state is None:
            empty = Conversation(key[0], key[1], "", None, 0, 0, 0)
            state = self._states[key] = _State(empty, 0, 0)
        current = state.conversation
        name = _group_name(item)
        if name is not None:
            current = dataclasses.replace(current, name=name)
        if current.last is None or item.id > current.last.id:
            current = dataclasses.replace(current, last=item, truncated=False)
            counts = not item.outgoing and item.content_type != NOTICE
            if counts and item.id > current.read_id:
                current = dataclasses.replace(current, unread=current.unread + 1)
        state.conversation = current

    def apply_receipt(self, receipt: ReadReceipt) -> None:
        """Record how far the peer of a one-to-one conversation has read."""
        if receipt.group_id:
            return
        state = self._states.get((receipt.reader_id, 0))
        if state is None:
            return
        current = state.conversation
        state.conversation = dataclasses.replace(
            current, peer_read_id=max(current.peer_read_id, receipt.message_id)
        )

    @staticmethod
    def _changed(state: _State, current: Conversation, item: InboxItem) -> Conversation:
        """Return ``current`` with what ``item`` changes besides the count."""
        last = current.last
        if isinstance(item, Message):
            name = _group_name(item)
            if name is not None and item.seq >= state.named_at:
                current = dataclasses.replace(current, name=name)
                state.named_at = item.seq
            if item.seq > state.last_seq:
                state.last_seq = item.seq
                return dataclasses.replace(current, last=item, truncated=False)
            return current
        if isinstance(item, ConversationRead):
            return dataclasses.replace(
                current, read_id=max(current.read_id, item.read_id)
            )
        if last is None or last.id != item.message_id:
            return current
        if isinstance(item, MessageRecalled):
            last = dataclasses.replace(last, body=b"", recalled=True)
        elif isinstance(item, MessageEdited):
            last = dataclasses.replace(last, body=item.body, edited_at=item.edited_at)
        elif isinstance(item, MessageDeleted):
            # The message before it is not known here; Client.conversations()
            # reads the list again.
            return dataclasses.replace(current, last=None)
        return dataclasses.replace(current, last=last)


def _group_name(message: Message) -> str | None:
    """Return the name a group notice gives its group, if it gives one.

    The notices of a group's creation and renaming carry the name
    (docs/protocol.md, "Groups").
    """
    if not message.group_id or message.content_type != NOTICE:
        return None
    try:
        notice = json.loads(message.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(notice, dict):
        return None
    if notice.get("event") not in ("group_created", "group_renamed"):
        return None
    name = notice.get("name")
    return name if isinstance(name, str) else None


def _key_of(item: InboxItem) -> Key:
    if isinstance(item, Message):
        return item.conversation
    if item.group_id:
        return (0, item.group_id)
    return (item.peer_id, 0)
