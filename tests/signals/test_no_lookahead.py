"""No look-ahead: changing any candle after t never changes a signal or decision at or before t."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmg_autotrader.signals.engine import SignalEngine
from kmg_autotrader.signals.indicators import INDICATOR_COLUMNS
from kmg_autotrader.signals.params import SignalParams

from .conftest import candles_from_close

N = 400
# short periods so that every rule and regime is live within a few hundred candles
PARAMS = SignalParams(sma_fast=5, sma_slow=12, vol_baseline_period=20, breakout_period=10)


def walk(seed: int):
    rng = np.random.default_rng(seed)
    vol = np.where((np.arange(N) // 80) % 2 == 0, 0.002, 0.01)
    df = candles_from_close(100 * np.exp(np.cumsum(rng.normal(0, 1, N) * vol)))
    df["volume"] = rng.lognormal(3, 0.7, N)
    return df


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    t=st.integers(0, N - 2),
    scale=st.floats(0.5, 2.0),
    strategy=st.sampled_from(["default", "sma_cross_rsi"]),
)
def test_future_candles_do_not_change_the_past(
    seed: int, t: int, scale: float, strategy: str
) -> None:
    df = walk(seed)
    changed = df.copy()
    future = changed.index > t
    for col in ("open", "high", "low", "close"):
        changed.loc[future, col] *= scale
    changed.loc[future, "volume"] *= 3.0
    engine = SignalEngine(strategy, PARAMS)
    a = engine.run_history("X/USDT", df)
    b = engine.run_history("X/USDT", changed)
    past = slice(0, t + 1)
    for col in INDICATOR_COLUMNS:
        assert np.array_equal(a.frame.bars[col][past], b.frame.bars[col][past], equal_nan=True), col
    assert np.array_equal(a.frame.regime[past], b.frame.regime[past])
    assert np.array_equal(a.frame.decisions.entry[past], b.frame.decisions.entry[past])
    assert np.array_equal(a.frame.decisions.exit[past], b.frame.decisions.exit[past])
    ea, eb = a.entry_indices(), b.entry_indices()
    assert np.array_equal(ea[ea <= t], eb[eb <= t])
    for i in range(max(0, t - 30), t + 1):
        for held in (False, True):
            # repr: NaN snapshot values compare equal as text
            assert repr(a.decision_at(i, position_open=held)) == repr(
                b.decision_at(i, position_open=held)
            )
