"""Skipping quiet candles changes nothing: the event-driven replay and a replay that makes
every candle an event (what the live loop does) give the same orders, trades and equity —
with ATR stops and targets (default strategy), trailing-free, across several symbols."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kmg_autotrader.backtest.runner import BacktestRequest, run_backtest
from kmg_autotrader.pipeline import PipelineOutcome
from kmg_autotrader.signals import SignalParams
from tests.backtest.helpers import LOOSE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import make_walk


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


def _dip_and_recover() -> pd.DataFrame:
    """One symbol, one UTC day (from 00:00): an ``sma_cross_rsi`` entry (candle 61), a sharp
    one-candle dip while held that recovers at once (candle 141, no signal anywhere near it),
    an exit (184), a second entry (268) and its exit. Between the entry and the exit the dip is
    the only thing that happens: no event of the skipping replay falls on it."""
    steps = (
        [0.004, -0.004] * 30  # flat
        + [0.006, -0.004] * 40  # up: the cross, then the held position gains
        + [-0.10, 0.105]  # the dip, recovered on the next candle
        + [0.006, -0.004] * 10
        + [-0.006, 0.004] * 35  # down: the exit
        + [0.004, -0.004] * 15
        + [0.006, -0.004] * 30  # up again: a second entry
        + [-0.006, 0.004] * 25  # and down: its exit
    )
    close = 100 * np.exp(np.cumsum(np.r_[0.0, steps]))
    open_ = np.r_[close[0], close[:-1]]
    n = len(close)
    return pd.DataFrame(
        {
            "timestamp": 1_672_531_200_000 + 300_000 * np.arange(n, dtype=np.int64),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": np.full(n, 100.0),
        }
    )


def _outcome_key(outcome: PipelineOutcome) -> tuple[object, ...]:
    reason = None if outcome.risk is None else outcome.risk.reason_code
    orders = tuple((o.symbol, o.side, o.amount) for o in outcome.orders)  # type: ignore[attr-defined]
    return outcome.decision.symbol, outcome.decision.timestamp, outcome.stage, reason, orders


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ({"max_drawdown_percent": 1.0}, "DRAWDOWN_BREAKER"),
        ({"daily_loss_limit_percent": 0.4}, "DAILY_LOSS_KILL_SWITCH"),
    ],
)
async def test_breaker_trips_on_a_dip_between_events(limit: dict[str, float], code: str) -> None:
    # a position big enough for the one-candle dip to reach the limit (from the peak, or from
    # the day's start); the live loop marks equity on that candle and trips, so the second
    # entry is refused — the skipping replay must see the dip too
    frame = _dip_and_recover()
    risk = LOOSE.model_copy(update={"risk_per_trade_percent": 10.0, **limit})
    request = BacktestRequest(
        strategy="sma_cross_rsi", stake_amount=Decimal(5000), fee_edge=False, risk_params=risk
    )
    runs = []
    for dense in (False, True):
        outcomes: list[PipelineOutcome] = []
        result = await run_backtest(
            {"A/USDT": frame}, request, dense=dense, on_outcome=outcomes.append
        )
        runs.append((result, [_outcome_key(o) for o in outcomes]))
    (sparse, sparse_orders), (dense_result, dense_orders) = runs
    assert dense_result.recorder.rejections[code] == 1  # the reference trips
    assert len(dense_result.trades) == 1
    assert sparse_orders == dense_orders
    assert sparse.trades == dense_result.trades
    assert sparse.recorder.rejections == dense_result.recorder.rejections
    assert np.array_equal(sparse.equity, dense_result.equity)
    assert sparse.stats.close_events < dense_result.stats.close_events / 5


async def test_tight_breakers_over_many_days() -> None:
    # several symbols, weeks of candles, a kill-switch that trips on many days (and resets at
    # each UTC midnight) and a drawdown breaker: the skipping replay sees the same marks
    # (without the marks between events, this replay's trades differ from the reference)
    params = SignalParams(confidence_threshold=0.3, atr_target_mult=3.0, atr_stop_mult=3.0)
    risk = LOOSE.model_copy(
        update={
            "max_position_percent": 0.5,
            "max_total_exposure_percent": 1.0,
            "risk_per_trade_percent": 5.0,
            "daily_loss_limit_percent": 0.3,
            "max_drawdown_percent": 2.0,
        }
    )
    request = BacktestRequest(strategy="default", risk_params=risk, signal_params=params)
    outcomes: dict[bool, list[PipelineOutcome]] = {False: [], True: []}
    frames = make_walk(n_symbols=3, n_candles=8_000, seed=3)
    sparse = await run_backtest(dict(frames), request, on_outcome=outcomes[False].append)
    dense = await run_backtest(dict(frames), request, dense=True, on_outcome=outcomes[True].append)
    assert dense.recorder.rejections["DAILY_LOSS_KILL_SWITCH"] > 0
    assert [_outcome_key(o) for o in outcomes[False]] == [_outcome_key(o) for o in outcomes[True]]
    assert sparse.trades == dense.trades
    assert np.array_equal(sparse.equity, dense.equity)
    assert sparse.stats.close_events < dense.stats.close_events / 5
