"""Token bucket and dedupe window on a hand-moved clock."""

from __future__ import annotations

import pytest

from kmg_autotrader.alerts.limits import Deduper, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_burst_then_refill() -> None:
    clock = Clock()
    bucket = TokenBucket(per_minute=6, burst=2, clock=clock)
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]
    assert bucket.seconds_until_token() == pytest.approx(10.0)
    clock.t = 5
    assert not bucket.try_take()
    clock.t = 10
    assert bucket.try_take()
    clock.t = 1000  # refill never exceeds the burst
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]


def test_token_bucket_rejects_zero_rate() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_deduper_window() -> None:
    clock = Clock()
    dedupe = Deduper(window=60, clock=clock)
    assert dedupe.first_seen("a")
    assert not dedupe.first_seen("a")
    assert dedupe.first_seen("b")
    clock.t = 59.9
    assert not dedupe.first_seen("a")
    clock.t = 60
    assert dedupe.first_seen("a")


def test_deduper_disabled_and_bounded() -> None:
    assert all(Deduper(window=0).first_seen("x") for _ in range(3))
    clock = Clock()
    dedupe = Deduper(window=60, clock=clock, max_keys=10)
    for i in range(100):
        clock.t = i * 0.01
        assert dedupe.first_seen(f"k{i}")
    assert len(dedupe._seen) <= 10
