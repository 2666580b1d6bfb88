"""Signals the server pushes: typing indicators and presence.

Unlike messages, signals are never stored: a client that is offline misses
them, and the SDK keeps only the latest ones (see :meth:`Client.next_signal`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PresenceChanged", "Signal", "TypingChanged"]


@dataclass(frozen=True, slots=True)
class TypingChanged:
    """A peer started or stopped typing to this user, or in a group.

    While ``active``, show the indicator for ``ttl`` seconds unless another
    event refreshes or ends it. A message from the same user ends it too.
    """

    user_id: int
    user_name: str | None
    group_id: int
    """The group typed in; 0 for the one-to-one conversation with this user."""
    active: bool
    ttl: float
    """Seconds the indicator stays on without a refresh; 0 when stopped."""


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """A watched user's presence: the reply to :meth:`Client.watch_presence`,
    then each change."""

    user_id: int
    user_name: str | None
    online: bool
    last_seen: int
    """While offline: when the user was last online, in milliseconds since
    the Unix epoch; 0 if unknown or while online."""


Signal = TypingChanged | PresenceChanged
