"""Seeded random-walk OHLCV candles with volatility regimes, for speed benchmarks only.

``make_walk(n_symbols=10, n_candles=105_120, seed=0)`` gives a dict of DataFrames (one year of
5m candles per symbol) with columns timestamp (int64 ms, open time), open, high, low, close,
volume. Volatility switches between calm, normal and wild regimes (a Markov chain), and a slow
drift changes sign now and then, so trend/range/high-volatility all occur.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
STEP_MS = 5 * 60_000


def make_walk(
    n_symbols: int = 10, n_candles: int = 105_120, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """``n_symbols`` seeded random walks of ``n_candles`` 5m candles each."""
    rng = np.random.default_rng(seed)
    out: dict[str, pd.DataFrame] = {}
    ts = START_MS + STEP_MS * np.arange(n_candles, dtype=np.int64)
    vols = np.array([0.0008, 0.002, 0.006])  # per-candle sigma of the three regimes
    for k in range(n_symbols):
        # regime chain: mean stay ~2 days, then switch
        switches = rng.random(n_candles) < 1 / 576
        regime = np.cumsum(switches) % 3
        regime = rng.permutation(3)[regime]
        sigma = vols[regime]
        drift = np.repeat(rng.normal(0, 0.0002, n_candles // 2016 + 1), 2016)[:n_candles]
        ret = drift + sigma * rng.standard_normal(n_candles)
        close = (100.0 * (k + 1)) * np.exp(np.cumsum(ret))
        open_ = np.empty_like(close)
        open_[0] = close[0]
        open_[1:] = close[:-1]
        wick = np.abs(rng.standard_normal((2, n_candles))) * sigma * close * 0.5
        high = np.maximum(open_, close) + wick[0]
        low = np.minimum(open_, close) - wick[1]
        volume = rng.lognormal(3.0, 0.6, n_candles) * (1 + 50 * np.abs(ret))
        out[f"SYM{k}/USDT"] = pd.DataFrame(
            {
                "timestamp": ts,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
        )
    return out
