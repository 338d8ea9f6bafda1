"""Vectorised and incremental indicators agree (bit for bit) on the real candles."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from kmg_autotrader.signals.indicators import INDICATOR_COLUMNS, IndicatorEngine, compute_indicators
from kmg_autotrader.signals.params import SignalParams

from .conftest import load, real_files

COLS = ("open", "high", "low", "close", "volume")


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.stem)
@pytest.mark.parametrize("start", [0, 7, 400])
def test_incremental_equals_vectorised(path, start: int) -> None:
    df = load(path)
    params = SignalParams()
    full = compute_indicators(df, params)
    arrays = [df[c].to_numpy(float) for c in COLS]
    engine = IndicatorEngine(params)
    engine.warm_up(*[a[:start] for a in arrays])
    rows = [engine.update(*(float(a[i]) for a in arrays)) for i in range(start, len(df))]
    for col in INDICATOR_COLUMNS:
        inc = np.array([r[col] for r in rows])
        ref = full[col][start:]
        np.testing.assert_array_equal(np.isnan(inc), np.isnan(ref), err_msg=col)
        np.testing.assert_allclose(inc, ref, rtol=1e-9, atol=1e-9, err_msg=col)
        assert np.array_equal(inc, ref, equal_nan=True), f"{col} not bit-identical"


def test_matches_talib_directly(btc) -> None:
    p = SignalParams()
    f = compute_indicators(btc, p)
    h, lo, c = (btc[k].to_numpy(float) for k in ("high", "low", "close"))
    np.testing.assert_array_equal(f["sma_fast"], talib.SMA(c, p.sma_fast))
    np.testing.assert_array_equal(f["rsi"], talib.RSI(c, p.rsi_period))
    np.testing.assert_array_equal(f["atr"], talib.ATR(h, lo, c, p.atr_period))
    np.testing.assert_array_equal(f["adx"], talib.ADX(h, lo, c, p.adx_period))
    np.testing.assert_array_equal(f["ema"], talib.EMA(c, p.ema_period))
    upper, _middle, lower = talib.BBANDS(c, p.bb_period, p.bb_std, p.bb_std)
    np.testing.assert_array_equal(f["bb_upper"], upper)
    np.testing.assert_array_equal(f["bb_lower"], lower)


def test_known_values_on_constructed_series() -> None:
    n = 200
    close = 100 + np.arange(n, dtype=float)  # steady rise: RSI 100, chop low
    df = {
        "open": close - 0.5,
        "high": close + 0.5,
        "low": close - 1.0,
        "close": close,
        "volume": np.r_[np.full(n - 1, 10.0), 1000.0],
    }
    f = compute_indicators(df, SignalParams())
    assert f["sma_fast"][-1] == pytest.approx(np.mean(close[-20:]))
    assert f["rsi"][-1] == pytest.approx(100.0)
    assert f["atr"][-1] == pytest.approx(1.5)  # high - low every candle
    assert f["atr_pct"][-1] == pytest.approx(1.5 / close[-1])
    assert f["volume_z"][-1] > 4  # the last candle's volume spike
    assert f["hh_prev"][-1] == pytest.approx(close[-2] + 0.5)
    assert f["chop"][-1] < 40  # a straight line is not choppy
    assert f["rvol"][-1] > 0


def test_copy_is_independent(btc) -> None:
    arrays = [btc[c].to_numpy(float) for c in COLS]
    engine = IndicatorEngine(SignalParams())
    engine.warm_up(*[a[:500] for a in arrays])
    twin = engine.copy()
    a = engine.update(*(float(x[500]) for x in arrays))
    twin.update(1.0, 2.0, 0.5, 1.5, 3.0)  # nonsense candle on the copy only
    b = engine.copy().update(*(float(x[501]) for x in arrays))
    ref = compute_indicators(
        {c: x[:502] for c, x in zip(COLS, arrays, strict=True)}, SignalParams()
    )
    assert a["rsi"] == ref["rsi"][500]
    assert b["rsi"] == ref["rsi"][501]
