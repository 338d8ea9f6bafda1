"""Live performance figures for the dashboard.

One small function over plain values, delegating the arithmetic to
:func:`kmg_autotrader.analysis.analyze` (the same definitions the backtest report uses), so the
dashboard and a backtest never disagree on what "max drawdown" means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from kmg_autotrader.analysis import TradeRecord, analyze


def _trade(row: Mapping[str, Any]) -> TradeRecord:
    return TradeRecord(
        symbol=str(row["symbol"]),
        entry_time=int(row["opened_at"]),
        entry_price=float(row["entry_price"]),
        exit_time=int(row["closed_at"]),
        exit_price=float(row["exit_price"] or 0.0),
        amount=float(row["amount"]),
        fees=float(row["fees_paid"] or 0.0),
        pnl=float(row["realized_pnl"] or 0.0),
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compute_metrics(
    timestamps: Sequence[int],
    equity: Sequence[float],
    trades: Sequence[Mapping[str, Any]],
    *,
    timeframe_ms: int,
) -> dict[str, Any]:
    """Total return, max drawdown, Sharpe, win rate, profit factor, trade count, fees and PnL.

    ``trades`` are closed positions (``symbol, opened_at, closed_at, entry_price, exit_price,
    amount, fees_paid, realized_pnl``). With no equity point the return figures are 0.
    """
    records = [_trade(t) for t in trades]
    realized = sum(t.pnl for t in records)
    fees = sum(t.fees for t in records)
    wins = sum(1 for t in records if t.pnl > 0)
    gross_win = sum(t.pnl for t in records if t.pnl > 0)
    gross_loss = -sum(t.pnl for t in records if t.pnl <= 0)
    base: dict[str, Any] = {
        "as_of": int(timestamps[-1]) if timestamps else None,
        "equity": float(equity[-1]) if equity else None,
        "initial_equity": float(equity[0]) if equity else None,
        "total_return": 0.0,
        "max_drawdown": 0.0,
        "sharpe": 0.0,
        "trades": len(records),
        "wins": wins,
        "losses": len(records) - wins,
        "win_rate": wins / len(records) if records else 0.0,
        "profit_factor": (gross_win / gross_loss if gross_loss > 0 else None) if records else None,
        "realized_pnl": realized,
        "fees_paid": fees,
        "equity_points": len(equity),
    }
    if not equity or min(equity) <= 0:
        return base
    report = analyze(timestamps, equity, records, timeframe_ms=timeframe_ms)
    base.update(
        total_return=report.total_return,
        max_drawdown=report.max_drawdown,
        sharpe=_finite(report.sharpe) or 0.0,
    )
    return base
