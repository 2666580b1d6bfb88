"""Timing wheel, driven tick by tick: the wheel's own clock is virtual."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.gateway.wheel import TimingWheel


def advance(wheel: TimingWheel[str], ticks: int) -> list[tuple[int, str]]:
    expired = []
    for _ in range(ticks):
        expired.extend((wheel.now, key) for key in wheel.advance())
    return expired


def test_silent_key_expires_at_its_deadline() -> None:
    wheel: TimingWheel[str] = TimingWheel(size=8)
    wheel.touch("a", 3)
    assert advance(wheel, 5) == [(3, "a")]
    assert "a" not in wheel
    assert len(wheel) == 0


def test_touch_postpones_expiry() -> None:
    wheel: TimingWheel[str] = TimingWheel(size=8)
    wheel.touch("a", 3)
    advance(wheel, 2)
    wheel.touch("a", 3)
    assert advance(wheel, 4) == [(5, "a")]


def test_timeout_longer_than_ring_waits_whole_turns() -> None:
    wheel: TimingWheel[str] = TimingWheel(size=4)
    wheel.touch("long", 10)
    wheel.touch("short", 2)
    assert advance(wheel, 12) == [(2, "short"), (10, "long")]


def test_discard_forgets_key() -> None:
    wheel: TimingWheel[str] = TimingWheel(size=4)
    wheel.touch("a", 1)
    wheel.discard("a")
    wheel.discard("missing")
    assert advance(wheel, 3) == []


def test_zero_timeout_counts_as_one_tick() -> None:
    wheel: TimingWheel[str] = TimingWheel(size=4)
    wheel.touch("a", 0)
    assert advance(wheel, 1) == [(1, "a")]


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TimingWheel(size=0)


@given(
    size=st.integers(1, 16),
    plan=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from("abcde"), st.integers(1, 40)),
        max_size=60,
    ),
)
def test_expiry_matches_last_touch_plus_timeout(
    size: int, plan: list[tuple[int, str, int]]
) -> None:
    # Model: each key expires exactly at (tick of its last touch + timeout),
    # unless touched again before that.
    wheel: TimingWheel[str] = TimingWheel(size=size)
    deadlines: dict[str, int] = {}
    expected: list[tuple[int, str]] = []
    got: list[tuple[int, str]] = []
    touches = sorted(plan, key=lambda step: step[0])
    for tick in range(0, 90):
        for at, key, timeout in touches:
            if at == tick:
                wheel.touch(key, timeout)
                deadlines[key] = tick + timeout
        for key, deadline in list(deadlines.items()):
            if deadline == tick + 1:
                expected.append((tick + 1, key))
                del deadlines[key]
        got.extend((wheel.now, key) for key in wheel.advance())
    assert sorted(got) == sorted(expected)
