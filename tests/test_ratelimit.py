"""Token buckets on an explicit clock."""

from __future__ import annotations

import pytest

from switchboard.ratelimit import KeyedLimiter, TokenBucket


def test_bucket_allows_burst_then_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) == pytest.approx(0.5)


def test_bucket_never_saves_more_than_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert bucket.wait(100.0, 2) == 0.0
    assert bucket.take(100.0, 3) == pytest.approx(0.1)


def test_bucket_debit_goes_into_debt() -> None:
    bucket = TokenBucket(rate=4.0, burst=4, now=0.0)
    assert bucket.debit(0.0, 8) == pytest.approx(1.0)
    assert bucket.wait(0.5, 1) == pytest.approx(0.75)
    assert bucket.take(1.25) == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bucket_rejects_invalid_settings(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="invalid token bucket"):
        TokenBucket(rate, burst, 0.0)


def test_keyed_limiter_keeps_keys_apart() -> None:
    limiter: KeyedLimiter[str] = KeyedLimiter(rate=1.0, burst=1)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) == pytest.approx(1.0)
    assert limiter.take("b", 0.0) == 0.0
    assert limiter.wait("a", 0.5) == pytest.approx(0.5)
    assert limiter.wait("unknown", 0.5) == 0.0


def test_keyed_limiter_rate_zero_disables() -> None:
    limiter: KeyedLimiter[str] = KeyedLimiter(rate=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.take("a", 0.0) == 0.0 for _ in range(100))


def test_keyed_limiter_drops_full_buckets_at_capacity() -> None:
    limiter: KeyedLimiter[int] = KeyedLimiter(rate=1.0, burst=1, max_keys=3)
    for key in range(3):
        limiter.take(key, 0.0)
    # Later, all three buckets are full again and make room for new keys.
    assert limiter.take(99, 10.0) == 0.0
    assert len(limiter._buckets) == 1
