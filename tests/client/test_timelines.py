"""Sans-IO tracking of large-group timelines in the SDK."""

from __future__ import annotations

from switchboard.client.inbox import Inbox
from switchboard.client.timelines import Timelines


def drain(timelines: Timelines[str], group: int) -> list[str]:
    released = []
    while True:
        found = timelines.peek()
        if found is None or found[0] != group:
            return released
        released.append(found[1])
        timelines.pop(group)


def test_entries_released_once_in_order() -> None:
    timelines: Timelines[str] = Timelines()
    timelines.note_range(7, 1, 3)

    assert timelines.add(7, 2, "b")
    assert timelines.gaps() == [(7, 0)]
    assert timelines.add(7, 1, "a")
    assert not timelines.add(7, 1, "a again")
    assert timelines.add(7, 3, "c")

    assert drain(timelines, 7) == ["a", "b", "c"]
    assert not timelines.add(7, 2, "b again")
    assert timelines.peek() is None
    assert timelines.caught_up()


def test_start_seq_skips_earlier_entries() -> None:
    timelines: Timelines[str] = Timelines()
    assert timelines.add(9, 6, "pushed first")

    timelines.note_range(9, 5, 6)

    assert timelines.gaps() == [(9, 4)]
    assert timelines.add(9, 5, "join notice")
    assert drain(timelines, 9) == ["join notice", "pushed first"]


def test_cursors_continue_after_restart() -> None:
    timelines: Timelines[str] = Timelines({7: 10})
    timelines.note_range(7, 1, 12)

    assert not timelines.add(7, 10, "seen before")
    assert timelines.gaps() == [(7, 10)]
    assert timelines.add(7, 11, "k")
    assert timelines.add(7, 12, "l")
    assert drain(timelines, 7) == ["k", "l"]


def test_groups_tracked_apart() -> None:
    timelines: Timelines[str] = Timelines()
    timelines.add(1, 1, "one")
    timelines.add(2, 2, "two")

    assert timelines.gaps() == [(2, 0)]
    assert drain(timelines, 1) == ["one"]
    assert timelines.peek() is None
    assert not timelines.caught_up()


def test_inbox_skip_to_keeps_later_entries() -> None:
    inbox: Inbox[str] = Inbox(0)
    inbox.add(4, "d")
    inbox.add(6, "f")

    inbox.skip_to(3)

    assert inbox.delivered == 3
    assert inbox.contiguous == 4
    assert inbox.gap() == 4
    assert inbox.pop() == "d"
    inbox.skip_to(2)
    assert inbox.delivered == 4
