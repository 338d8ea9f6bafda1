"""A scenario small enough to check by hand: six candles, one trade, PnL and fees by hand.

Strategy: enter on the candle closing at 101, exit on the candle closing at 105. Stake 100
USDT, taker fee 0.1 %, no slippage, amount step 0.001, price step 0.01.

* candle 1 closes at 101 → buy intent: 100 / 101 = 0.990099 → 0.990 (rounded down);
* candle 2 opens at 102 → fill 0.990 @ 102: cost 100.98, fee 0.10098;
* candle 3 closes at 105 → exit signal;
* candle 4 opens at 106 → sell 0.990 @ 106: proceeds 104.94, fee 0.10494;
* PnL = 104.94 − 100.98 − 0.10098 − 0.10494 = 3.75408; fees 0.20592.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from kmg_autotrader.backtest.export import export
from kmg_autotrader.backtest.runner import BacktestRequest, run_backtest
from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.execution import SlippageModel
from kmg_autotrader.signals.bars import Bars
from kmg_autotrader.signals.regimes import IntArray
from kmg_autotrader.signals.rules import RuleHits
from kmg_autotrader.signals.strategies import register_strategy
from kmg_autotrader.signals.strategies.base import (
    STYLE_NONE,
    STYLE_TREND,
    Decisions,
    Strategy,
    nan_levels,
)
from tests.backtest.helpers import LOOSE

STEP = 300_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % STEP


@register_strategy
class CloseLevels(Strategy):
    """Enter when a candle closes at 101, exit when one closes at 105 (test only)."""

    name = "test_close_levels"
    apply_gates = False

    def decide(self, bars: Bars, hits: Mapping[str, RuleHits], regime: IntArray) -> Decisions:
        """Masks from the close."""
        entry = bars["close"] == 101.0
        return Decisions(
            entry=entry,
            exit=bars["close"] == 105.0,
            style=np.where(entry, STYLE_TREND, STYLE_NONE).astype(np.int8),
            confidence=np.where(entry, 1.0, 0.0),
        )

    def levels(self, bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
        """No stop, no target."""
        return nan_levels(bars)


CANDLES = pd.DataFrame(
    {
        "timestamp": [T0 + i * STEP for i in range(6)],
        "open": [100.0, 100.0, 102.0, 103.0, 106.0, 106.0],
        "high": [100.5, 101.5, 103.0, 105.5, 107.0, 107.0],
        "low": [99.5, 99.5, 101.0, 102.5, 105.0, 105.0],
        "close": [100.0, 101.0, 102.0, 105.0, 106.0, 106.0],
        "volume": [10.0] * 6,
    }
)
MARKET = MarketInfo(
    "TEST/USDT",
    "TEST",
    "USDT",
    amount_step=Decimal("0.001"),
    price_step=Decimal("0.01"),
    min_amount=Decimal("0.001"),
    min_cost=Decimal(5),
    maker_fee=Decimal("0.001"),
    taker_fee=Decimal("0.001"),
)
REQUEST = BacktestRequest(
    strategy="test_close_levels",
    stake_amount=Decimal(100),
    fee_edge=False,
    risk_params=LOOSE,
    slippage=SlippageModel(base_bps=Decimal(0), impact_bps=Decimal(0)),
)


async def _run() -> object:
    return await run_backtest(
        {"TEST/USDT": CANDLES.copy()}, REQUEST, markets={"TEST/USDT": MARKET}, keep_prices=True
    )


async def test_one_trade_by_hand() -> None:
    result = await _run()
    (trade,) = result.trades  # type: ignore[attr-defined]
    assert trade.entry_time == T0 + 2 * STEP  # decided on candle 1, filled at candle 2's open
    assert trade.exit_time == T0 + 4 * STEP
    assert trade.entry_price == 102.0
    assert trade.exit_price == 106.0
    assert trade.amount == pytest.approx(0.990)
    assert trade.fees == pytest.approx(0.10098 + 0.10494)
    assert trade.pnl == pytest.approx(3.75408)
    assert trade.exit_reason == "signal"


async def test_result_repr_is_a_summary() -> None:
    # asyncio.run formats the main task's result (see BacktestResult): one line, no trade list
    result = await _run()
    text = repr(result)
    assert text == (
        "BacktestResult(strategy='test_close_levels', symbols=1, candles=6, trades=1, "
        f"open_positions=0, elapsed_s={result.elapsed_s:.2f})"  # type: ignore[attr-defined]
    )


async def test_equity_curve_by_hand() -> None:
    result = await _run()
    equity = result.equity  # type: ignore[attr-defined]
    cash_in_trade = 10_000 - 100.98 - 0.10098
    expected = [
        10_000,
        10_000,
        cash_in_trade + 0.99 * 102,
        cash_in_trade + 0.99 * 105,
        10_000 + 3.75408,
        10_000 + 3.75408,
    ]
    assert equity.tolist() == pytest.approx(expected)
    report = result.report  # type: ignore[attr-defined]
    assert report.final_equity == pytest.approx(10_003.75408)
    assert report.trades == 1 and report.win_rate == 1.0
    assert report.fees_paid == pytest.approx(0.20592)


async def test_export_files(tmp_path: object) -> None:
    import csv
    import json
    from pathlib import Path

    result = await _run()
    paths = export(result, Path(str(tmp_path)))  # type: ignore[arg-type]
    names = {p.name for p in paths}
    assert names == {"trades.csv", "equity.csv", "metrics.json", "report.html"}
    rows = list(csv.DictReader((Path(str(tmp_path)) / "trades.csv").open()))
    assert list(rows[0]) == [
        "symbol",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "amount",
        "fees",
        "pnl",
        "exit_reason",
    ]
    assert int(rows[0]["entry_time"]) == T0 + 2 * STEP
    assert float(rows[0]["pnl"]) == pytest.approx(3.75408)
    equity = (Path(str(tmp_path)) / "equity.csv").read_text().splitlines()
    assert equity[0] == "timestamp,equity" and len(equity) == 7
    metrics = json.loads((Path(str(tmp_path)) / "metrics.json").read_text())
    for key in (
        "initial_equity",
        "final_equity",
        "total_return",
        "max_drawdown",
        "sharpe",
        "sortino",
        "calmar",
        "win_rate",
        "profit_factor",
        "expectancy",
        "trades",
        "fees_paid",
        "exposure",
        "buy_and_hold_return",
    ):
        assert key in metrics
    page = (Path(str(tmp_path)) / "report.html").read_text()
    assert "<svg" in page and "http://" not in page and "https://" not in page
    assert "Monthly returns" in page
