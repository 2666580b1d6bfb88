"""Distinct integer and string types for the ids that cross layers."""

from __future__ import annotations

from typing import NewType

__all__ = [
    "ClientMessageId",
    "ConnectionId",
    "DeviceId",
    "GroupId",
    "MessageId",
    "Seq",
    "UserId",
]

UserId = NewType("UserId", int)
"""Account id, assigned by the store, never reused."""

DeviceId = NewType("DeviceId", str)
"""Device name chosen by the client at login (for example ``phone``)."""

MessageId = NewType("MessageId", int)
"""Server message id: the same in every inbox that holds the message."""

Seq = NewType("Seq", int)
"""Position in one user's inbox: gapless, strictly increasing from 1."""

GroupId = NewType("GroupId", int)
"""Group id, assigned by the store, never reused."""

ClientMessageId = NewType("ClientMessageId", int)
"""Per-device message number chosen by the sender; resends reuse it."""

ConnectionId = NewType("ConnectionId", int)
"""Gateway-local connection number."""
