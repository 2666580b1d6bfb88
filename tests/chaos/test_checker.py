"""The checker finds each kind of violation in a hand-made history."""

from __future__ import annotations

from switchboard.chaos.checker import check
from switchboard.chaos.history import History, Received, SendRecord

ALICE, BOB, CAROL = 1, 2, 3


def history_of(*sends: SendRecord) -> History:
    """Alice has devices a1 and a2, Bob b1, Carol c1."""
    history = History()
    for user, device in ((ALICE, "a1"), (ALICE, "a2"), (BOB, "b1"), (CAROL, "c1")):
        history.add_device(user, device)
    for record in sends:
        history.record_send(record)
    return history


def send(index: int, message_id: int = 0, error: str = "") -> SendRecord:
    body = f"{ALICE}/a1/{index}".encode()
    return SendRecord(ALICE, "a1", index, BOB, body, message_id, index + 1, error)


def hand_out(history: History, device: tuple[int, str], record: SendRecord) -> None:
    seq = len(history.received[device]) + 1
    message = Received(record.message_id, seq, ALICE, BOB, record.body)
    history.record_received(device, message)


def deliver_everywhere(history: History, record: SendRecord) -> None:
    for device in ((ALICE, "a1"), (ALICE, "a2"), (BOB, "b1")):
        hand_out(history, device, record)


def test_clean_history_passes() -> None:
    records = [send(0, 10), send(1, 11)]
    history = history_of(*records)
    for record in records:
        deliver_everywhere(history, record)

    verdict = check(history)
    assert verdict.ok, verdict.violations
    assert verdict.acked == 2
    assert verdict.expected == 6
    assert verdict.delivered == 6


def test_missing_device_is_lost() -> None:
    record = send(0, 10)
    history = history_of(record)
    hand_out(history, (ALICE, "a1"), record)
    hand_out(history, (BOB, "b1"), record)

    verdict = check(history)
    assert verdict.lost == 1
    assert "never handed out to 1/a2" in verdict.violations[0]


def test_second_handout_is_duplicate() -> None:
    record = send(0, 10)
    history = history_of(record)
    deliver_everywhere(history, record)
    hand_out(history, (BOB, "b1"), record)

    verdict = check(history)
    assert verdict.duplicated == 1
    assert not verdict.ok


def test_other_message_id_is_duplicate() -> None:
    record = send(0, 10)
    history = history_of(record)
    deliver_everywhere(history, record)
    history.received[(BOB, "b1")][0] = Received(99, 1, ALICE, BOB, record.body)

    verdict = check(history)
    assert verdict.duplicated == 1
    assert "stored twice" in verdict.violations[0]


def test_send_order_break_is_reordered() -> None:
    first, second = send(0, 10), send(1, 11)
    history = history_of(first, second)
    for record in (second, first):
        deliver_everywhere(history, record)

    verdict = check(history)
    assert verdict.reordered == 3


def test_store_order_break_is_reordered() -> None:
    first, second = send(0, 11), send(1, 10)
    history = history_of(first, second)
    for record in (first, second):
        deliver_everywhere(history, record)

    verdict = check(history)
    assert verdict.reordered == 1
    assert "stored before" in verdict.violations[0]


def test_falling_seq_is_reordered() -> None:
    record = send(0, 10)
    history = history_of(record)
    deliver_everywhere(history, record)
    history.received[(BOB, "b1")].append(Received(10, 1, ALICE, BOB, b"1/a1/0"))

    verdict = check(history)
    assert verdict.reordered >= 1
    assert any("seq 1 after seq 1" in text for text in verdict.violations)


def test_unknown_body_is_phantom() -> None:
    history = history_of()
    history.record_received((BOB, "b1"), Received(5, 1, ALICE, BOB, b"forged"))

    verdict = check(history)
    assert verdict.phantom == 1


def test_wrong_user_is_phantom() -> None:
    record = send(0, 10)
    history = history_of(record)
    deliver_everywhere(history, record)
    hand_out(history, (CAROL, "c1"), record)

    verdict = check(history)
    assert verdict.phantom == 1
    assert "neither user" in verdict.violations[0]


def test_failed_and_not_delivered_passes() -> None:
    history = history_of(send(0, error="SendRejected: too large"))

    verdict = check(history)
    assert verdict.ok, verdict.violations
    assert verdict.failed == 1


def test_failed_but_delivered_fails() -> None:
    record = send(0, error="SendRejected: too large")
    history = history_of(record)
    record.message_id = 10
    deliver_everywhere(history, record)
    record.message_id = 0

    verdict = check(history)
    assert not verdict.ok
    assert "reported failed" in verdict.violations[0]


def test_unacked_delivered_once_passes() -> None:
    record = send(0)
    history = history_of(record)
    record.message_id = 10
    deliver_everywhere(history, record)
    record.message_id = 0

    verdict = check(history)
    assert verdict.ok, verdict.violations
    assert verdict.unresolved == 1


def test_unacked_and_unreported_is_lost() -> None:
    history = history_of(send(0))

    verdict = check(history)
    assert verdict.lost == 3
    assert "neither acknowledged" in verdict.violations[0]


def test_client_error_is_violation() -> None:
    history = history_of()
    history.client_errors.append("the session of device 1/a1 ended")

    verdict = check(history)
    assert verdict.violations == ["the session of device 1/a1 ended"]
