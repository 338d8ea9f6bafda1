"""The venue's core without the network: clock, replayed candles, prices, books, trades."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from kmg_autotrader.venue.clock import VenueClock
from kmg_autotrader.venue.market import DAY_MS, Candle, MarketState, UnsupportedTimeframe
from tests.venue.conftest import START_MS, sample_frames

STEP = 300_000


@pytest.fixture
def market() -> MarketState:
    return MarketState(
        sample_frames(), START_MS, warmup=1000, price_steps={"BTC/USDT": Decimal("0.01")}
    )


def test_clock_manual_moves_only_forward() -> None:
    clock = VenueClock(start_ms=1_000, speed=0, step_ms=STEP)
    assert clock.now_ms() == 1_000
    assert clock.step() == STEP  # to the next boundary
    assert clock.step(2) == 3 * STEP
    assert clock.advance_to(3 * STEP + 5) == 3 * STEP + 5
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(10)
    assert clock.now_ms() == 3 * STEP + 5


def test_clock_runs_at_speed() -> None:
    wall = [0]
    clock = VenueClock(start_ms=10_000, speed=60, step_ms=STEP, wall=lambda: wall[0])
    wall[0] = 5_000  # 5 wall seconds at speed 60 = one 5m candle
    assert clock.now_ms() == 10_000 + STEP
    wall[0] = 4_000  # a wall clock stepping back does not move venue time back
    assert clock.now_ms() == 10_000 + STEP


def test_restamp_keeps_time_of_day_and_puts_warmup_in_the_past(market: MarketState) -> None:
    raw = sample_frames()["BTC/USDT"]["timestamp"].to_numpy()
    assert market.shift_ms % DAY_MS == 0
    closed = market.visible("BTC/USDT", "5m", START_MS, limit=5000)
    assert closed[-1].ts <= START_MS < closed[-1].ts + STEP  # the last one is forming
    assert 1000 <= len(closed) - 1 < 1000 + DAY_MS // STEP
    assert [c.ts for c in closed] == list(raw[: len(closed)] + market.shift_ms)


def test_forming_candle_follows_the_path_and_ends_exact(market: MarketState) -> None:
    frame = sample_frames()["BTC/USDT"]
    forming = market.visible("BTC/USDT", "5m", START_MS)[-1]
    i = int(np.searchsorted(frame["timestamp"].to_numpy() + market.shift_ms, forming.ts))
    row = frame.iloc[i]
    # partial: open is the real open, volume pro rata, high/low within the real range
    assert forming.open == row["open"]
    assert row["low"] <= forming.low <= forming.high <= row["high"]
    assert forming.volume == pytest.approx(row["volume"] * (START_MS - forming.ts) / STEP)
    final = market.bucket("BTC/USDT", "5m", forming.ts, forming.ts + STEP)
    assert final == Candle(
        forming.ts, row["open"], row["high"], row["low"], row["close"], row["volume"]
    )
    # the path touches the low and the high inside the candle
    ticks = [p for _, p in market.path_ticks("BTC/USDT", forming.ts - 1, forming.ts + STEP)]
    assert Decimal(repr(float(row["low"]))) in ticks and Decimal(repr(float(row["high"]))) in ticks


def test_resampled_hour_equals_aggregated_base_candles(market: MarketState) -> None:
    now = START_MS + 10 * STEP
    hours = market.visible("BTC/USDT", "1h", now, limit=3)
    base = market.visible("BTC/USDT", "5m", now, limit=1000)
    for hour in hours[:-1]:  # closed hours
        parts = [c for c in base if hour.ts <= c.ts < hour.ts + 3_600_000]
        assert len(parts) == 12
        assert hour.open == parts[0].open and hour.close == parts[-1].close
        assert hour.high == max(p.high for p in parts) and hour.low == min(p.low for p in parts)
        assert hour.volume == pytest.approx(sum(p.volume for p in parts))
    forming = hours[-1]
    assert forming.ts <= now < forming.ts + 3_600_000
    assert forming.close == base[-1].close  # the forming hour ends at the forming 5m price


def test_finer_or_misaligned_timeframes_are_refused(market: MarketState) -> None:
    for tf in ("1m", "7m", "1w", "1M", "x"):
        with pytest.raises(UnsupportedTimeframe):
            market.visible("BTC/USDT", tf, START_MS)


def test_trades_aggregate_back_to_the_candle_exactly(market: MarketState) -> None:
    frame = sample_frames()["BTC/USDT"]
    first = market.first_ms("BTC/USDT")
    trades = market.trades("BTC/USDT", first, first + 3 * STEP - 1)
    assert len(trades) == 12
    for k in range(3):
        chunk = trades[4 * k : 4 * k + 4]
        row = frame.iloc[k]
        assert all(first + k * STEP <= t.ts < first + (k + 1) * STEP for t in chunk)
        assert [t.ts for t in chunk] == sorted({t.ts for t in chunk})
        prices = [t.price for t in chunk]
        assert prices[0] == Decimal(repr(float(row["open"]))) and prices[-1] == Decimal(
            repr(float(row["close"]))
        )
        assert max(prices) == Decimal(repr(float(row["high"]))) and min(prices) == Decimal(
            repr(float(row["low"]))
        )
        assert sum(t.amount for t in chunk) == Decimal(repr(float(row["volume"])))
    assert [t.id for t in trades] == sorted({t.id for t in trades})


def test_order_book_spread_is_one_step(market: MarketState) -> None:
    book = market.order_book("BTC/USDT", START_MS)
    last = market.last_price("BTC/USDT", START_MS)
    assert book["bids"][0][0] == last
    assert book["asks"][0][0] - book["bids"][0][0] == Decimal("0.01")
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)


def test_warmup_beyond_the_data_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves no candle"):
        MarketState(sample_frames(), START_MS, warmup=20_000)
