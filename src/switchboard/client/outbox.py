"""Sans-IO bookkeeping of sent messages until the server acknowledges them.

Each message keeps its client id for life: every connection resends the
messages still unacknowledged, in their original order and with the same
ids, and the server stores each (device, client id) once. Receipts of recent
messages are kept so that an application retrying with a client id that was
already acknowledged gets the same receipt without a round trip.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from switchboard.client.models import Sent

__all__ = ["Outbox", "PendingSend"]

RECENT_RECEIPTS = 1024
"""Receipts kept for retries after acknowledgement; older ones are forgotten."""


@dataclass(slots=True)
class PendingSend:
    """A message waiting for its ``SendAck``."""

    client_id: int
    recipient_id: int
    """The recipient of a one-to-one message; 0 for a group message."""
    body: bytes
    content_type: int
    group_id: int = 0
    """The group of a group message; 0 for a one-to-one message."""
    mentions: tuple[int, ...] = ()
    written_on: int = 0
    """Connection number that last carried the Send frame; 0 for none."""


class Outbox:
    """Unacknowledged messages in send order, and recent receipts."""

    __slots__ = ("_pending", "_recent")

    def __init__(self) -> None:
        self._pending: OrderedDict[int, PendingSend] = OrderedDict()
        self._recent: OrderedDict[int, Sent] = OrderedDict()

    def __len__(self) -> int:
        """Number of unacknowledged messages."""
        return len(self._pending)

    def add(
        self,
        client_id: int,
        recipient_id: int,
        body: bytes,
        content_type: int,
        *,
        group_id: int = 0,
        mentions: tuple[int, ...] = (),
    ) -> PendingSend:
        """Queue a message; a client id already queued returns that entry."""
        pending = self._pending.get(client_id)
        if pending is None:
            pending = PendingSend(
                client_id, recipient_id, body, content_type, group_id, mentions
            )
            self._pending[client_id] = pending
        return pending

    def get(self, client_id: int) -> PendingSend | None:
        return self._pending.get(client_id)

    def pending(self) -> list[PendingSend]:
        """Return the unacknowledged messages, oldest first."""
        return list(self._pending.values())

    def receipt(self, client_id: int) -> Sent | None:
        """Return the receipt of a recently acknowledged message, if kept."""
        return self._recent.get(client_id)

    def to_write(self, connection: int) -> list[PendingSend]:
        """Return messages not yet written on ``connection``, oldest first, and
        mark them written."""
        batch = [p for p in self._pending.values() if p.written_on != connection]
        for pending in batch:
            pending.written_on = connection
        return batch

    def mark_unwritten(self, client_id: int) -> None:
        """Make a message due for writing again (after a rate limit, for example)."""
        pending = self._pending.get(client_id)
        if pending is not None:
            pending.written_on = 0

    def acknowledge(
        self, client_id: int, seq: int, message_id: int, sent_at: int
    ) -> tuple[PendingSend, Sent] | None:
        """Settle a message with its SendAck; return None for an unknown client id."""
        pending = self._pending.pop(client_id, None)
        if pending is None:
            return None
        sent = Sent(
            client_id=client_id,
            recipient_id=pending.recipient_id,
            id=message_id,
            seq=seq,
            sent_at=sent_at,
            group_id=pending.group_id,
        )
        self._recent[client_id] = sent
        while len(self._recent) > RECENT_RECEIPTS:
            self._recent.popitem(last=False)
        return pending, sent

    def reject(self, client_id: int) -> PendingSend | None:
        """Drop a message the server rejected for good; return it if it was queued."""
        return self._pending.pop(client_id, None)

    def clear(self) -> list[PendingSend]:
        """Drop and return every unacknowledged message."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending
