"""Values the SDK returns: users, logins, messages, send receipts, gateways."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TEXT", "Gateway", "HistoryPage", "Login", "Message", "Sent", "User"]

TEXT = 0
"""Content type of a UTF-8 text message."""


@dataclass(frozen=True, slots=True)
class User:
    """An account: its numeric id and its unique name."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Login:
    """A token issued by ``POST /v1/sessions`` for one device."""

    token: str
    user_id: int
    device: str
    expires_at: int
    """Milliseconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Sent:
    """The server's receipt for a stored message (a ``SendAck`` frame).

    Sending again with the same ``client_id`` returns an equal receipt.
    """

    client_id: int
    recipient_id: int
    id: int
    """Server message id, the same in every inbox that contains the message."""
    seq: int
    """The message's sequence in the sender's inbox."""
    sent_at: int
    """Milliseconds since the Unix epoch, stamped by the server."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message, from the inbox or from history.

    Names are None when the SDK could not look them up (server unreachable).
    """

    id: int
    seq: int
    """Position in this user's inbox; 0 for a message read from history."""
    sender_id: int
    recipient_id: int
    sender_name: str | None
    recipient_name: str | None
    content_type: int
    body: bytes
    sent_at: int
    """Milliseconds since the Unix epoch, stamped by the server."""
    outgoing: bool
    """Whether this user sent the message (from this device or another)."""

    @property
    def text(self) -> str | None:
        """The body decoded as UTF-8 for a text message; None for other types."""
        if self.content_type != TEXT:
            return None
        return self.body.decode(errors="replace")

    @property
    def peer_id(self) -> int:
        """The other user of the conversation this message belongs to."""
        return self.recipient_id if self.outgoing else self.sender_id

    @property
    def peer_name(self) -> str | None:
        """Name of :attr:`peer_id`, if known."""
        return self.recipient_name if self.outgoing else self.sender_name


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of one conversation, newest message first."""

    messages: list[Message]
    has_more: bool
    """Whether older messages exist; pass the last id as ``before`` to read them."""


@dataclass(frozen=True, slots=True)
class Gateway:
    """A gateway address for a socket connection.

    ``address`` is ``HOST:PORT`` for the ``tcp`` transport and a ``ws://`` or
    ``wss://`` URL for the ``ws`` transport.
    """

    transport: str
    address: str
