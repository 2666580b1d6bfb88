"""Reconnect backoff: exponential bound, full jitter, reset."""

from __future__ import annotations

import random

import pytest

from switchboard.client.backoff import Backoff


def test_bound_doubles_up_to_cap() -> None:
    backoff = Backoff(base=0.5, cap=30.0)
    bounds = [backoff.bound(attempt) for attempt in range(9)]
    assert bounds == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_huge_attempt_does_not_overflow() -> None:
    assert Backoff(base=0.5, cap=30.0).bound(10_000) == 30.0


def test_delays_stay_within_bound() -> None:
    backoff = Backoff(base=0.5, cap=30.0, rng=random.Random(7))
    for attempt in range(50):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= backoff.bound(attempt)
    assert backoff.attempt == 50


def test_delays_are_jittered() -> None:
    backoff = Backoff(base=1.0, cap=1.0, rng=random.Random(1))
    delays = {backoff.next_delay() for _ in range(20)}
    assert len(delays) == 20


def test_reset_starts_over() -> None:
    backoff = Backoff(base=0.5, cap=30.0, rng=random.Random(3))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay() <= 0.5


def test_jitter_adds_up_to_base() -> None:
    backoff = Backoff(base=0.5, cap=30.0, rng=random.Random(5))
    for _ in range(20):
        assert 2.0 <= backoff.jitter(2.0) <= 2.5


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_invalid_settings_raise(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base=base, cap=cap)
