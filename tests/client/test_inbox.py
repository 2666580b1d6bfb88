"""Inbox: ordering, duplicates, gaps and the cursor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.client.inbox import Inbox


def drain(inbox: Inbox[str]) -> list[str]:
    released = []
    while (entry := inbox.pop()) is not None:
        released.append(entry)
    return released


def test_in_order_entries_release_in_order() -> None:
    inbox: Inbox[str] = Inbox()
    for seq in (1, 2, 3):
        assert inbox.add(seq, f"m{seq}")
    assert drain(inbox) == ["m1", "m2", "m3"]
    assert inbox.delivered == 3
    assert inbox.contiguous == 3
    assert inbox.gap() is None


def test_out_of_order_entry_waits_for_gap() -> None:
    inbox: Inbox[str] = Inbox()
    inbox.add(2, "m2")
    assert inbox.peek() is None
    assert inbox.pop() is None
    assert inbox.contiguous == 0
    assert inbox.gap() == 0
    inbox.add(1, "m1")
    assert inbox.contiguous == 2
    assert inbox.gap() is None
    assert drain(inbox) == ["m1", "m2"]


def test_duplicate_entry_is_rejected() -> None:
    inbox: Inbox[str] = Inbox()
    assert inbox.add(1, "first")
    assert not inbox.add(1, "second")
    assert inbox.pop() == "first"
    assert not inbox.add(1, "after release")
    assert inbox.pop() is None


def test_entry_at_or_below_cursor_is_rejected() -> None:
    inbox: Inbox[str] = Inbox(delivered=5)
    assert not inbox.add(5, "old")
    assert not inbox.add(3, "older")
    assert inbox.add(6, "new")
    assert inbox.pop() == "new"
    assert inbox.delivered == 6


def test_gap_reports_first_missing_range() -> None:
    inbox: Inbox[str] = Inbox()
    for seq in (1, 2, 5, 7):
        inbox.add(seq, str(seq))
    assert inbox.contiguous == 2
    assert inbox.gap() == 2
    assert inbox.head == 7


def test_server_head_above_entries_is_a_gap() -> None:
    inbox: Inbox[str] = Inbox()
    inbox.add(1, "m1")
    inbox.note_head(4)
    assert inbox.gap() == 1
    inbox.note_head(2)
    assert inbox.head == 4


def test_contiguous_counts_held_and_released() -> None:
    inbox: Inbox[str] = Inbox()
    inbox.add(1, "m1")
    inbox.add(2, "m2")
    inbox.pop()
    assert inbox.delivered == 1
    assert inbox.contiguous == 2
    assert len(inbox) == 1


def test_peek_does_not_release() -> None:
    inbox: Inbox[str] = Inbox()
    inbox.add(1, "m1")
    assert inbox.peek() == "m1"
    assert inbox.peek() == "m1"
    assert inbox.delivered == 0


def test_reset_drops_held_entries() -> None:
    inbox: Inbox[str] = Inbox(delivered=10)
    inbox.add(12, "stale")
    inbox.reset(3)
    assert inbox.delivered == 3
    assert inbox.contiguous == 3
    assert inbox.head == 3
    assert len(inbox) == 0
    assert inbox.gap() is None
    assert inbox.add(4, "m4")
    assert inbox.pop() == "m4"


@pytest.mark.parametrize("seq", [0, -1])
def test_invalid_sequence_raises(seq: int) -> None:
    inbox: Inbox[str] = Inbox()
    with pytest.raises(ValueError, match="sequences start at 1"):
        inbox.add(seq, "bad")


def test_negative_cursor_raises() -> None:
    with pytest.raises(ValueError, match="must be 0 or more"):
        Inbox(delivered=-1)


@given(st.data())
def test_any_delivery_order_yields_each_once(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=60), label="n")
    repeats = data.draw(
        st.lists(st.integers(min_value=1, max_value=n), max_size=3 * n),
        label="repeats",
    )
    deliveries = data.draw(
        st.permutations(list(range(1, n + 1)) + repeats), label="deliveries"
    )
    inbox: Inbox[int] = Inbox()
    released: list[int] = []
    for seq in deliveries:
        inbox.add(seq, seq)
        # Release between deliveries too, as a consumer would.
        while (entry := inbox.pop()) is not None:
            released.append(entry)
    assert released == list(range(1, n + 1))
    assert inbox.delivered == n
    assert inbox.contiguous == n
    assert inbox.gap() is None
    assert len(inbox) == 0


@given(st.data())
def test_contiguous_never_passes_a_missing_entry(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=2, max_value=40), label="n")
    missing = data.draw(st.integers(min_value=1, max_value=n), label="missing")
    present = [seq for seq in range(1, n + 1) if seq != missing]
    deliveries = data.draw(st.permutations(present), label="deliveries")
    inbox: Inbox[int] = Inbox()
    for seq in deliveries:
        inbox.add(seq, seq)
    assert inbox.contiguous == missing - 1
    released = []
    while (entry := inbox.pop()) is not None:
        released.append(entry)
    assert released == list(range(1, missing))
    if missing < n:
        assert inbox.gap() == missing - 1
