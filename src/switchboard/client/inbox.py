"""Sans-IO inbox sequence tracking for one device.

Entries of a user's inbox carry gapless sequence numbers from 1. They reach a
device out of order and more than once: pushed ``Message`` frames, sync pages,
and the device's own sends acknowledged by ``SendAck``. :class:`Inbox` stores
each entry once by its sequence number, releases entries strictly in sequence
order, and reports the first gap so that the caller can ask the server for it
with a ``Sync`` frame.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Inbox"]

T = TypeVar("T")


class Inbox(Generic[T]):
    """Entries received by sequence number, released once each and in order.

    ``delivered`` is the highest sequence released by :meth:`pop`: every
    entry up to it has been handed on, so it is the cursor to persist.
    ``contiguous`` is the highest sequence up to which every entry is held or
    delivered, so it is the ``last_seq`` to put in a ``Connect`` frame.
    """

    __slots__ = ("_contiguous", "_delivered", "_head", "_pending")

    def __init__(self, delivered: int = 0) -> None:
        if delivered < 0:
            raise ValueError(f"invalid cursor {delivered}: must be 0 or more")
        self._delivered = delivered
        self._contiguous = delivered
        self._head = delivered
        self._pending: dict[int, T] = {}

    @property
    def delivered(self) -> int:
        """Highest sequence released by :meth:`pop`."""
        return self._delivered

    @property
    def contiguous(self) -> int:
        """Highest sequence with no missing entry at or below it."""
        return self._contiguous

    @property
    def head(self) -> int:
        """Highest sequence known to exist, from entries or from the server."""
        return self._head

    def __len__(self) -> int:
        """Number of entries held and not yet released."""
        return len(self._pending)

    def add(self, seq: int, entry: T) -> bool:
        """Store ``entry`` at ``seq``; return False if it was already received."""
        if seq <= 0:
            raise ValueError(f"invalid sequence {seq}: sequences start at 1")
        if seq <= self._delivered or seq in self._pending:
            return False
        self._pending[seq] = entry
        self._head = max(self._head, seq)
        while self._contiguous + 1 in self._pending:
            self._contiguous += 1
        return True

    def note_head(self, head_seq: int) -> None:
        """Record that the server's inbox reaches ``head_seq``."""
        self._head = max(self._head, head_seq)

    def peek(self) -> T | None:
        """Return the next entry in sequence order without releasing it."""
        return self._pending.get(self._delivered + 1)

    def pop(self) -> T | None:
        """Release the next entry in sequence order, or return None if missing."""
        entry = self._pending.pop(self._delivered + 1, None)
        if entry is not None:
            self._delivered += 1
        return entry

    def gap(self) -> int | None:
        """Return the sequence to sync after when an entry is missing, else None.

        An entry is missing when a higher one was received, or when the server
        reported a head above everything held.
        """
        if self._head > self._contiguous:
            return self._contiguous
        return None

    def skip_to(self, seq: int) -> None:
        """Continue after ``seq`` when nothing up to it can be received.

        Used for a group timeline that the user may read only from
        ``seq + 1`` on. Entries held above ``seq`` are kept.
        """
        if seq <= self._delivered:
            return
        self._pending = {s: e for s, e in self._pending.items() if s > seq}
        self._delivered = seq
        self._contiguous = max(self._contiguous, seq)
        self._head = max(self._head, seq)
        while self._contiguous + 1 in self._pending:
            self._contiguous += 1

    def reset(self, seq: int) -> None:
        """Drop every held entry and continue after ``seq``.

        Used when the server reports that the cursor is above its inbox's
        highest sequence (``CURSOR_AHEAD``), for example after its data was
        restored from a backup. Entries held above that head no longer exist
        on the server, and the next entry the server stores will be ``seq + 1``.
        """
        if seq < 0:
            raise ValueError(f"invalid sequence {seq}: must be 0 or more")
        self._pending.clear()
        self._delivered = seq
        self._contiguous = seq
        self._head = seq
