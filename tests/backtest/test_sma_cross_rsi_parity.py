"""``sma_cross_rsi`` through the full pipeline gives exactly the trades of an independent
vectorised numpy + TA-Lib computation, on real candles and on a synthetic set."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kmg_autotrader.backtest.runner import BacktestRequest, run_backtest
from kmg_autotrader.execution import SlippageModel
from tests.backtest.helpers import LOOSE, STAKE, reference_trades, trade_keys
from tests.data import BTC_USDT_CSV

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

REQUEST = BacktestRequest(
    strategy="sma_cross_rsi", stake_amount=STAKE, fee_edge=False, risk_params=LOOSE
)


async def _check(frames: dict[str, pd.DataFrame]) -> None:
    expected = sorted(t for s, f in frames.items() for t in reference_trades(s, f))
    opens = {s: dict(zip(f["timestamp"], f["open"], strict=True)) for s, f in frames.items()}
    result = await run_backtest(dict(frames), REQUEST)
    assert len(expected) > 20
    assert trade_keys(result.trades) == expected
    for t in result.trades:  # market fills at the next open, moved against us by slippage
        entry_open, exit_open = opens[t.symbol][t.entry_time], opens[t.symbol][t.exit_time]
        assert entry_open <= t.entry_price <= entry_open * 1.001
        assert exit_open * 0.999 <= t.exit_price <= exit_open
        assert t.exit_reason == "signal"
        assert t.amount * t.entry_price == pytest.approx(100, rel=0.01)


async def test_real_btcusdt_candles() -> None:
    await _check({"BTC/USDT": pd.read_csv(BTC_USDT_CSV)})


async def test_synthetic_walk() -> None:
    from synthetic import make_walk

    await _check(make_walk(n_symbols=3, n_candles=12_000, seed=7))


async def test_without_slippage_fills_are_the_next_open() -> None:
    from synthetic import make_walk

    frames = make_walk(n_symbols=1, n_candles=6_000, seed=3)
    frame = frames["SYM0/USDT"]
    request = BacktestRequest(
        strategy="sma_cross_rsi",
        stake_amount=STAKE,
        fee_edge=False,
        risk_params=LOOSE,
        slippage=SlippageModel(base_bps=0, impact_bps=0),  # type: ignore[arg-type]
    )
    result = await run_backtest(dict(frames), request)
    opens = dict(zip(frame["timestamp"], frame["open"], strict=True))
    assert result.trades
    for t in result.trades:  # only the price step's adverse rounding remains
        assert t.entry_price == pytest.approx(opens[t.entry_time], rel=1e-5)
        assert t.exit_price == pytest.approx(opens[t.exit_time], rel=1e-5)
    assert np.all(np.diff(result.timestamps) > 0)
