"""Skipping quiet candles changes nothing: the event-driven replay and a replay that makes
every candle an event (what the live loop does) give the same orders, trades and equity —
with ATR stops and targets (default strategy), trailing-free, across several symbols."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from kmg_autotrader.backtest.runner import BacktestRequest, run_backtest
from kmg_autotrader.signals import SignalParams
from tests.backtest.helpers import LOOSE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


async def _both(request: BacktestRequest, n_symbols: int, n: int, seed: int) -> tuple:  # type: ignore[type-arg]
    from synthetic import make_walk

    frames = make_walk(n_symbols=n_symbols, n_candles=n, seed=seed)
    sparse = await run_backtest(dict(frames), request)
    dense = await run_backtest(dict(frames), request, dense=True)
    return sparse, dense


async def test_default_strategy_with_stops_and_targets() -> None:
    # a low confidence bar so that plenty of entries (with ATR stop/target) get through
    params = SignalParams(confidence_threshold=0.3, atr_target_mult=2.0, atr_stop_mult=1.5)
    request = BacktestRequest(strategy="default", risk_params=LOOSE, signal_params=params)
    sparse, dense = await _both(request, 3, 8_000, 11)
    assert len(sparse.trades) >= 10
    assert {t.exit_reason for t in sparse.trades} & {"stop_loss", "take_profit"}
    assert sparse.trades == dense.trades
    assert np.array_equal(sparse.equity, dense.equity)
    assert sparse.stats.close_events < dense.stats.close_events / 5


async def test_default_risk_limits_and_breakers() -> None:
    # default risk parameters: max positions, cooldowns, drawdown breaker all active
    params = SignalParams(confidence_threshold=0.3)
    request = BacktestRequest(strategy="default", signal_params=params)
    sparse, dense = await _both(request, 3, 6_000, 5)
    assert sparse.trades == dense.trades
    assert sparse.recorder.rejections == dense.recorder.rejections


async def test_limit_bracket_resting_orders() -> None:
    # post-only limit entries and resting take-profits: every candle with a resting order
    # is an event, and the result equals the every-candle replay
    from kmg_autotrader.domain import ExecutionMode

    params = SignalParams(confidence_threshold=0.3, atr_target_mult=2.0, atr_stop_mult=1.5)
    request = BacktestRequest(
        strategy="default",
        risk_params=LOOSE,
        signal_params=params,
        execution_mode=ExecutionMode.LIMIT_BRACKET,
    )
    sparse, dense = await _both(request, 2, 6_000, 13)
    assert len(sparse.trades) >= 5
    assert sparse.trades == dense.trades
    assert np.array_equal(sparse.equity, dense.equity)
