"""Outbox: resend order, per-connection writes, receipts and rejections."""

from __future__ import annotations

from switchboard.client.models import Sent
from switchboard.client.outbox import RECENT_RECEIPTS, Outbox


def test_writes_each_message_once_per_connection() -> None:
    outbox = Outbox()
    outbox.add(1, 7, b"a", 0)
    outbox.add(2, 7, b"b", 0)
    assert [p.client_id for p in outbox.to_write(1)] == [1, 2]
    assert outbox.to_write(1) == []
    outbox.add(3, 7, b"c", 0)
    assert [p.client_id for p in outbox.to_write(1)] == [3]


def test_new_connection_resends_in_original_order() -> None:
    outbox = Outbox()
    for client_id in (5, 3, 9):
        outbox.add(client_id, 7, b"x", 0)
    outbox.to_write(1)
    assert [p.client_id for p in outbox.to_write(2)] == [5, 3, 9]


def test_adding_queued_client_id_returns_existing() -> None:
    outbox = Outbox()
    first = outbox.add(1, 7, b"original", 0)
    again = outbox.add(1, 8, b"changed", 0)
    assert again is first
    assert again.body == b"original"
    assert len(outbox) == 1


def test_acknowledge_settles_and_keeps_receipt() -> None:
    outbox = Outbox()
    outbox.add(1, 7, b"a", 0)
    result = outbox.acknowledge(1, seq=4, message_id=40, sent_at=1000)
    assert result is not None
    pending, sent = result
    assert pending.body == b"a"
    assert sent == Sent(client_id=1, recipient_id=7, id=40, seq=4, sent_at=1000)
    assert len(outbox) == 0
    assert outbox.receipt(1) == sent
    assert outbox.to_write(2) == []


def test_unknown_acknowledgement_is_ignored() -> None:
    outbox = Outbox()
    assert outbox.acknowledge(1, seq=1, message_id=1, sent_at=1) is None
    assert outbox.receipt(1) is None


def test_receipts_are_bounded() -> None:
    outbox = Outbox()
    for client_id in range(1, RECENT_RECEIPTS + 2):
        outbox.add(client_id, 7, b"x", 0)
        outbox.acknowledge(client_id, seq=client_id, message_id=client_id, sent_at=1)
    assert outbox.receipt(1) is None
    assert outbox.receipt(2) is not None


def test_mark_unwritten_makes_message_due() -> None:
    outbox = Outbox()
    outbox.add(1, 7, b"a", 0)
    outbox.to_write(1)
    outbox.mark_unwritten(1)
    assert [p.client_id for p in outbox.to_write(1)] == [1]


def test_reject_drops_message() -> None:
    outbox = Outbox()
    outbox.add(1, 7, b"a", 0)
    rejected = outbox.reject(1)
    assert rejected is not None
    assert rejected.client_id == 1
    assert outbox.reject(1) is None
    assert outbox.to_write(1) == []


def test_clear_returns_pending() -> None:
    outbox = Outbox()
    outbox.add(1, 7, b"a", 0)
    outbox.add(2, 7, b"b", 0)
    assert [p.client_id for p in outbox.clear()] == [1, 2]
    assert len(outbox) == 0
