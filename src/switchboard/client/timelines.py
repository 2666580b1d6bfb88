"""Sans-IO tracking of large-group timelines for one device.

A large group keeps one timeline with its own gapless sequence instead of
entries in each member's inbox (docs/protocol.md, "Large groups"). Its
messages reach a device as pushes, in ``TimelinePage`` frames and from the
device's own ``SendAck``, possibly twice and out of order. :class:`Timelines`
keeps one :class:`~switchboard.client.inbox.Inbox` per group, so each entry
is released once and in sequence order, and reports the gaps to sync.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from switchboard.client.inbox import Inbox

__all__ = ["Timelines"]

T = TypeVar("T")


class Timelines(Generic[T]):
    """Timeline entries by group, each group released in sequence order.

    ``cursors`` maps a group id to the highest sequence already handed on,
    as kept in the client's state.
    """

    __slots__ = ("_groups",)

    def __init__(self, cursors: dict[int, int] | None = None) -> None:
        self._groups: dict[int, Inbox[T]] = {
            group: Inbox(seq) for group, seq in (cursors or {}).items()
        }

    def _inbox(self, group: int) -> Inbox[T]:
        inbox = self._groups.get(group)
        if inbox is None:
            inbox = self._groups[group] = Inbox(0)
        return inbox

    def note_range(self, group: int, start_seq: int, head_seq: int) -> None:
        """Record that the user may read entries ``start_seq..head_seq``."""
        inbox = self._inbox(group)
        if start_seq > 0:
            inbox.skip_to(start_seq - 1)
        inbox.note_head(head_seq)

    def add(self, group: int, seq: int, entry: T) -> bool:
        """Store an entry; return False if it was received before."""
        return self._inbox(group).add(seq, entry)

    def gaps(self) -> list[tuple[int, int]]:
        """Return ``(group, after_seq)`` for each group with a missing entry."""
        found = []
        for group, inbox in self._groups.items():
            after = inbox.gap()
            if after is not None:
                found.append((group, after))
        return found

    def gap(self, group: int) -> int | None:
        inbox = self._groups.get(group)
        return None if inbox is None else inbox.gap()

    def peek(self) -> tuple[int, T] | None:
        """Return the next releasable entry of any group, with its group."""
        for group, inbox in self._groups.items():
            entry = inbox.peek()
            if entry is not None:
                return group, entry
        return None

    def pop(self, group: int) -> int:
        """Release the next entry of ``group``; return the group's cursor."""
        inbox = self._groups[group]
        inbox.pop()
        return inbox.delivered

    def caught_up(self) -> bool:
        """Return whether every known entry of every group was released."""
        return all(inbox.delivered >= inbox.head for inbox in self._groups.values())
