"""Shared fixtures: the packaged real candles (tests/data) and small constructed series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data import BTC_PAIRS_DIR, BTC_USDT_CSV


def real_files() -> list[Path]:
    """The BTCUSDT CSV and the six 2018 feather files."""
    return [BTC_USDT_CSV, *sorted(BTC_PAIRS_DIR.glob("*.feather"))]


def load(path: Path) -> pd.DataFrame:
    """Read one real candle file."""
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_feather(path)


def candles_from_close(
    close: np.ndarray, *, spread: float = 0.001, volume: float = 100.0
) -> pd.DataFrame:
    """OHLCV frame around a close path (open = previous close, small wicks)."""
    close = np.asarray(close, dtype=float)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    ts = 1_672_531_200_000 + 300_000 * np.arange(len(close), dtype=np.int64)
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.full(len(close), volume),
        }
    )


@pytest.fixture(scope="session")
def btc() -> pd.DataFrame:
    """BTC/USDT 5m, 10,999 real candles."""
    return load(BTC_USDT_CSV)
