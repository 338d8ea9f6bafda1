"""Replay feed ordering, gap flags and the clock; clock-driven scheduled jobs."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from kmg_autotrader.autopilot.feeds import ClosedCandle, ReplayFeed
from kmg_autotrader.autopilot.jobs import DAY_MS, ScheduledJobs, day_start, week_start
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.sample_data import load_sample_set

TF = 300_000


def _frame(timestamps: list[int], price: float = 100.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": timestamps,
            "open": price,
            "high": price + 1,
            "low": price - 1,
            "close": price,
            "volume": 1.0,
        }
    )


async def _collect(feed: ReplayFeed, stop: asyncio.Event | None = None) -> list[ClosedCandle]:
    seen: list[ClosedCandle] = []
    clock_at: list[int] = []

    async def on_candle(event: ClosedCandle) -> None:
        seen.append(event)
        clock_at.append(feed.clock.now_ms())

    async def on_price(symbol: str, price: float, ts: int) -> None:
        raise AssertionError("a replay feed sends candles only")

    await feed.run(on_candle, on_price, stop or asyncio.Event())
    # the clock always shows the candle's close time while its handler runs
    assert clock_at == [e.closed_at for e in seen]
    return seen


async def test_replay_merges_symbols_in_time_order_and_flags_gaps() -> None:
    frames = {
        "A/USDT": _frame([0, TF, 2 * TF, 5 * TF]),  # a hole of two candles before 5*TF
        "B/USDT": _frame([TF, 2 * TF, 3 * TF]),
    }
    feed = ReplayFeed(frames, TF, clock=SimulatedClock(0), speed=0)
    events = await _collect(feed)
    assert [(e.symbol, e.candle.timestamp) for e in events] == [
        ("A/USDT", 0),
        ("A/USDT", TF),
        ("B/USDT", TF),
        ("A/USDT", 2 * TF),
        ("B/USDT", 2 * TF),
        ("B/USDT", 3 * TF),
        ("A/USDT", 5 * TF),
    ]
    assert [e.gap_before for e in events] == [False] * 6 + [True]
    assert feed.total_steps == feed.steps_done == 5


async def test_real_gaps_of_the_packaged_btc_pairs_are_flagged() -> None:
    frames = load_sample_set("btc-pairs")
    expected = len(frames["ADA/BTC"].attrs["gaps"])
    feed = ReplayFeed({"ADA/BTC": frames["ADA/BTC"]}, TF, clock=SimulatedClock(0), speed=0)
    events = await _collect(feed)
    assert sum(e.gap_before for e in events) == expected > 0
    assert len(events) == len(frames["ADA/BTC"])


async def test_stop_ends_the_replay_between_steps() -> None:
    feed = ReplayFeed(
        {"A/USDT": _frame([i * TF for i in range(100)])}, TF, clock=SimulatedClock(0), speed=1000
    )
    stop = asyncio.Event()
    seen: list[ClosedCandle] = []

    async def on_candle(event: ClosedCandle) -> None:
        seen.append(event)
        if len(seen) == 10:
            stop.set()

    async def on_price(symbol: str, price: float, ts: int) -> None:
        return None

    await feed.run(on_candle, on_price, stop)
    assert len(seen) == 10


def test_negative_speed_is_refused() -> None:
    with pytest.raises(ValueError):
        ReplayFeed({}, TF, clock=SimulatedClock(0), speed=-1)


async def test_jobs_run_once_at_their_boundaries_and_failures_are_contained() -> None:
    monday = week_start(1_700_000_000_000)  # 2023-11-13, a Monday
    clock = SimulatedClock(monday + DAY_MS * 5 + 3_600_000)  # Saturday 01:00
    calls: list[tuple[str, int, int]] = []

    async def daily(start: int, end: int) -> None:
        calls.append(("daily", start, end))

    async def weekly(start: int, end: int) -> None:
        calls.append(("weekly", start, end))

    async def snapshot(now: int) -> None:
        calls.append(("snapshot", now, now))
        raise RuntimeError("disk full")  # must not escape

    jobs = ScheduledJobs(
        clock, daily=daily, weekly=weekly, snapshot=snapshot, snapshot_every_ms=3_600_000
    )
    assert await jobs.tick() == []  # the snapshot failed, nothing else due
    clock.set(clock.now_ms() + 60_000)
    assert await jobs.tick() == []  # not due again yet
    clock.set(monday + 7 * DAY_MS + 60_000)  # the next Monday 00:01
    ran = await jobs.tick()
    assert "daily" in ran and "weekly" in ran
    daily_calls = [c for c in calls if c[0] == "daily"]
    saturday, sunday = day_start(monday + 5 * DAY_MS), day_start(monday + 6 * DAY_MS)
    # each day its own summary (Sunday was crossed without a tick: caught up, in order)
    assert daily_calls == [("daily", saturday, sunday), ("daily", sunday, monday + 7 * DAY_MS)]
    assert ("weekly", monday, monday + 7 * DAY_MS) in calls
    assert sum(1 for c in calls if c[0] == "snapshot") == 2
