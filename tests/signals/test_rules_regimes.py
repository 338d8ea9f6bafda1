"""Rules and regimes on constructed series where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from kmg_autotrader.domain import Regime, Side
from kmg_autotrader.signals.bars import Bars
from kmg_autotrader.signals.indicators import compute_indicators
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.regimes import REGIMES, classify
from kmg_autotrader.signals.rules import (
    AtrExpansion,
    RangeBreakout,
    RsiExtreme,
    RsiExtremeExit,
    RsiLevel,
    SmaCross,
    VolumeSpike,
)

from .conftest import candles_from_close

P = SignalParams()


def bars_of(close, **kw) -> Bars:
    return Bars(compute_indicators(candles_from_close(np.asarray(close, float), **kw), P))


def v_shape() -> np.ndarray:
    return np.r_[np.linspace(200, 100, 120), np.linspace(100, 200, 120)]


def test_golden_and_death_cross() -> None:
    bars = bars_of(np.r_[v_shape(), np.linspace(200, 100, 120)])
    hits = SmaCross(P).evaluate(bars)
    buys, sells = np.flatnonzero(hits.buy), np.flatnonzero(hits.sell)
    assert len(buys) == 1 and 120 < buys[0] < 240
    fast, slow = bars["sma_fast"], bars["sma_slow"]
    i = buys[0]
    assert fast[i] > slow[i] and fast[i - 1] <= slow[i - 1]
    assert len(sells) == 1 and sells[0] > 240
    reason = SmaCross(P).reason(Side.BUY, bars.row(i), bars.prev_row(i))
    assert reason.startswith("SMA20 crossed above SMA50 at ") and "; RSI " in reason
    assert 0 <= hits.strength[i] <= 1


def rise_then_flat() -> np.ndarray:
    """A rise (fast above slow), then a market standing still at its last price: TA-Lib's
    running sums leave the two averages of that one price 2e-11 apart, fast *below*."""
    rise = np.linspace(20_000.37, 21_000.37, 200).round(2)
    return np.r_[rise, np.full(80, rise[-1])]


def test_a_market_standing_still_gives_no_cross() -> None:
    # Regression (issue 17, e2e test_quiet_market): fast == slow, then slow a hair above
    # counted as a death cross on flat candles.
    bars = bars_of(rise_then_flat())
    fast, slow = bars["sma_fast"], bars["sma_slow"]
    assert fast[-1] < slow[-1] and slow[-1] - fast[-1] < 1e-9  # the float noise is there
    assert (fast[199] > slow[199]) and abs(fast[-1] - 21_000.37) < 1e-9
    hits = SmaCross(P).evaluate(bars)
    assert not hits.sell[200:].any() and not hits.buy[200:].any()
    # the live path (one row and the one before) decides the same on every flat candle
    for i in range(240, 280):
        one = SmaCross(P).evaluate(Bars.from_rows(bars.row(i), bars.prev_row(i)))
        assert not one.sell[0] and not one.buy[0]


@pytest.mark.parametrize("scale", [1.0, 1e-8])  # BTC prices, and a coin priced in 1e-4
def test_a_real_cross_out_of_a_flat_market_still_counts(scale: float) -> None:
    flat = rise_then_flat()
    fall = flat[-1] - np.arange(1, 21) * 0.5  # half a unit a candle: a small, real move
    bars = bars_of(np.r_[flat, fall] * scale)
    hits = SmaCross(P).evaluate(bars)
    assert np.flatnonzero(hits.sell[200:]).tolist() == [80]  # the first falling candle
    assert not hits.buy[200:].any()
    climb = bars_of(np.r_[flat, flat[-1] + np.arange(1, 21) * 0.5] * scale)
    assert np.flatnonzero(SmaCross(P).evaluate(climb).buy[200:]).tolist() == [80]


def test_rsi_extremes_and_exits() -> None:
    close = np.r_[np.full(30, 100.0), np.linspace(100, 80, 20), np.linspace(80, 90, 10)]
    bars = bars_of(close)
    ext = RsiExtreme(P).evaluate(bars)
    out = RsiExtremeExit(P).evaluate(bars)
    assert ext.buy[45:50].all()  # falling for 15+ candles: RSI 0 < 30
    assert not ext.sell.any()
    first_exit = np.flatnonzero(out.buy)
    assert len(first_exit) == 1 and first_exit[0] >= 50
    assert bars.prev("rsi")[first_exit[0]] < 30 <= bars["rsi"][first_exit[0]]
    rising = bars_of(np.r_[np.full(30, 100.0), np.linspace(100, 130, 20)])
    assert RsiLevel(P).evaluate(rising).sell[-1]  # RSI 100 > 80
    assert RsiExtreme(P).evaluate(rising).sell[-1]


def test_volume_spike_and_side_from_candle() -> None:
    df = candles_from_close(np.linspace(100, 101, 60))
    df.loc[50, "volume"] = 10_000.0
    vol = np.r_[np.full(50, 100.0), 10_000.0, np.full(9, 100.0)] + np.arange(60) % 3
    df["volume"] = vol
    hits = VolumeSpike(P).evaluate(Bars(compute_indicators(df, P)))
    assert np.flatnonzero(hits.buy).tolist() == [50]  # up candle → buy side
    assert not hits.sell.any()


def test_range_breakout() -> None:
    close = np.r_[100 + np.sin(np.arange(60)), 105.0]
    hits = RangeBreakout(P).evaluate(bars_of(close))
    assert hits.buy[-1] and not hits.buy[25:-1].any()
    down = RangeBreakout(P).evaluate(bars_of(np.r_[100 + np.sin(np.arange(60)), 95.0]))
    assert down.sell[-1]


def test_atr_expansion_fires_once_on_the_jump() -> None:
    rng = np.random.default_rng(1)
    calm = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, 300)))
    wild = calm[-1] * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    bars = bars_of(np.r_[calm, wild], spread=0.0005)
    hits = AtrExpansion(P).evaluate(bars)
    fired = np.flatnonzero(hits.buy | hits.sell)
    assert len(fired) >= 1 and fired[0] >= 300
    assert not (hits.buy & hits.sell).any()


def regime_at_end(close, **kw) -> Regime:
    return REGIMES[int(classify(bars_of(close, **kw), P)[-1])]


def test_regimes() -> None:
    n = 400
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.0005, n)
    up = 100 * np.exp(np.cumsum(0.002 + noise))
    down = 100 * np.exp(np.cumsum(-0.002 + noise))
    assert regime_at_end(up) is Regime.TREND_UP
    assert regime_at_end(down) is Regime.TREND_DOWN
    assert most_common(100 + rng.normal(0, 0.5, n)) is Regime.CHOP  # noise around a level
    assert most_common(np.full(n, 100.0)) is Regime.CHOP  # a flat line
    calm = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    burst = np.r_[calm, calm[-1] * np.exp(np.cumsum(rng.normal(0, 0.02, 15)))]
    assert regime_at_end(burst, spread=0.0002) is Regime.HIGH_VOLATILITY
    assert REGIMES[int(classify(bars_of(up), P)[0])] is Regime.UNKNOWN  # warm-up


def most_common(close) -> Regime:
    codes = classify(bars_of(close), P)[150:]
    return REGIMES[int(np.bincount(codes).argmax())]


def test_range_regime() -> None:
    t = np.arange(400)
    swing = 100 + 3 * np.sin(2 * np.pi * t / 20)  # clean swings between two levels
    assert most_common(swing) is Regime.RANGE


def test_prev_view_reads_like_prev_row() -> None:
    bars = bars_of(v_shape())
    for i in (0, 1, 57, len(v_shape()) - 1):
        view, row = bars.prev_view(i), bars.prev_row(i)
        assert list(view) == list(row) and len(view) == len(row)
        assert repr(dict(view)) == repr(row) == repr(view)  # NaN-safe equality
        assert "rsi" in view and "nope" not in view and view.get("nope") is None
    taken = bars.take(np.array([5, 80]))
    assert repr(dict(taken.prev_view(1))) == repr(bars.prev_row(80))


def test_take_keeps_previous_values_aligned() -> None:
    from kmg_autotrader.signals.bars import shift1

    bars = bars_of(v_shape())
    bars.prev("rsi")  # one column already shifted, the others not
    n = bars.size
    for index in (np.array([0, 3, 90, n - 1]), np.array([7]), bars["close"] > 150, slice(0, 9)):
        taken = bars.take(index)
        for k in ("close", "rsi", "sma_fast", "hh_prev"):
            assert repr(taken.prev(k).tolist()) == repr(shift1(bars[k])[index].tolist())
        again = taken.take(np.array([0, 1]) if taken.size > 1 else np.array([0]))
        assert repr(again.prev("rsi").tolist()) == repr(taken.prev("rsi")[: again.size].tolist())
    some = bars.take(np.array([0, 50]), names=["close", "rsi"])
    full = bars.take(np.array([0, 50]))
    assert some.row(1) == {k: full.row(1)[k] for k in ("close", "rsi")}
    assert repr(some.prev_row(0)) == repr({k: full.prev_row(0)[k] for k in ("close", "rsi")})


def test_first_valid_row() -> None:
    from kmg_autotrader.signals.indicators.nodes import _first_valid

    a = np.full(5000, np.nan)
    assert _first_valid((a,)) == 5000
    for start in (0, 1, 1023, 1024, 1025, 4999):
        b = a.copy()
        b[start:] = 1.0
        c = np.ones(5000)
        c[: start + 2] = np.nan
        assert _first_valid((b,)) == start
        assert _first_valid((b, c)) == min(start + 2, 5000)
    assert _first_valid((np.array([]),)) == 0
