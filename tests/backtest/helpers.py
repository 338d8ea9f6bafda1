"""Shared builders for backtest tests: loose risk limits and an independent reference."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import talib

from kmg_autotrader.risk.params import RiskParams

#: Limits that never bind, so a strategy's rules alone decide (as in the reference tools).
LOOSE = RiskParams(
    max_open_positions=100,
    max_position_percent=1.0,
    max_total_exposure_percent=1.0,
    cooldown_minutes=0,
    cooldown_after_loss_minutes=0,
    max_drawdown_percent=100,
    daily_loss_limit_percent=100,
    max_trades_per_day=10_000,
)
STAKE = Decimal(100)


def reference_trades(symbol: str, candles: pd.DataFrame) -> list[tuple[str, int, int]]:
    """``sma_cross_rsi`` computed independently with numpy + TA-Lib: (symbol, entry fill time,
    exit fill time) per closed trade. Signals on candle t's close, fills at t+1's open, one
    position at a time, no stops."""
    close = candles["close"].to_numpy(dtype=np.float64)
    ts = candles["timestamp"].to_numpy(dtype=np.int64)
    fast, slow, rsi = talib.SMA(close, 20), talib.SMA(close, 50), talib.RSI(close, 14)
    up = np.zeros(len(close), dtype=bool)
    down = np.zeros(len(close), dtype=bool)
    up[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
    down[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
    entries = np.flatnonzero(up & (rsi < 70))
    exits = np.flatnonzero(down | (rsi > 80))
    out: list[tuple[str, int, int]] = []
    n, flat_from = len(close), 0
    while True:
        i = int(np.searchsorted(entries, flat_from))
        if i >= len(entries) or entries[i] + 1 >= n:
            return out
        e = int(entries[i])
        j = int(np.searchsorted(exits, e + 1))
        if j >= len(exits) or exits[j] + 1 >= n:
            return out
        x = int(exits[j])
        out.append((symbol, int(ts[e + 1]), int(ts[x + 1])))
        flat_from = x + 1


def trade_keys(trades: Any) -> list[tuple[str, int, int]]:
    """(symbol, entry time, exit time) of backtest trades, in the reference's order."""
    return sorted((t.symbol, t.entry_time, t.exit_time) for t in trades)
