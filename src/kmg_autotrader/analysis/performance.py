"""Performance metrics from an equity curve and a list of closed trades.

Annualisation is explicit and follows crypto's 24/7 calendar: a year is 365 days of
``timeframe`` periods (105,120 five-minute candles), not 252 trading days. Ratios use simple
per-period returns of the equity curve, the same definitions as ``quantstats`` (Sharpe: mean
over sample standard deviation; Sortino: mean over downside deviation ``sqrt(sum(r<0)^2 / n)``;
CAGR over the number of return periods; Calmar: CAGR over max drawdown), so the figures can be
checked against it. Drawdowns are reported as positive fractions (0.12 = 12 % below the peak).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

YEAR_MS = 365 * 24 * 60 * 60 * 1000


def periods_per_year(timeframe_ms: int) -> float:
    """Number of ``timeframe_ms`` periods in a 365-day year (crypto trades every day)."""
    if timeframe_ms <= 0:
        raise ValueError("timeframe_ms must be positive")
    return YEAR_MS / timeframe_ms


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One closed trade. Times in UTC epoch ms, prices in quote, ``pnl`` net of all fees."""

    symbol: str
    entry_time: int
    entry_price: float
    exit_time: int
    exit_price: float
    amount: float
    fees: float
    pnl: float
    exit_reason: str = ""


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Every figure the report, the dashboard and ``metrics.json`` show."""

    initial_equity: float
    final_equity: float
    total_return: float
    annualized_return: float
    max_drawdown: float
    max_drawdown_duration_ms: int
    sharpe: float
    sortino: float
    calmar: float
    volatility_annualized: float
    trades: int
    wins: int
    losses: int
    win_rate: float
    win_loss_ratio: float
    profit_factor: float
    expectancy: float
    average_trade: float
    average_hold_ms: float
    exposure: float
    fees_paid: float
    buy_and_hold_return: float
    periods: int
    periods_per_year: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict; NaN and infinities become None-safe floats (JSON has neither)."""
        out: dict[str, float | int] = {}
        for key, value in asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = 0.0 if math.isnan(value) else (1e308 if value > 0 else -1e308)
            else:
                out[key] = value
        return out


def _drawdown(equity: np.ndarray, timestamps: np.ndarray) -> tuple[float, int]:
    peaks = np.maximum.accumulate(equity)
    drawdowns = 1.0 - equity / peaks
    max_dd = float(drawdowns.max()) if drawdowns.size else 0.0
    # longest stretch spent below a previous peak (until recovered or the end)
    longest = 0
    start: int | None = None
    for i in np.flatnonzero(np.diff(np.concatenate(([0], (drawdowns > 0).astype(np.int8), [0])))):
        if start is None:
            start = int(i)
        else:
            end_index = min(int(i), len(timestamps) - 1)
            begin = max(start - 1, 0)  # the peak is the candle before the drawdown starts
            longest = max(longest, int(timestamps[end_index] - timestamps[begin]))
            start = None
    return max_dd, longest


def _exposure(trades: Sequence[TradeRecord], start: int, end: int) -> float:
    """Fraction of the period with at least one position open (overlaps counted once)."""
    if end <= start or not trades:
        return 0.0
    intervals = sorted((max(t.entry_time, start), min(t.exit_time, end)) for t in trades)
    covered = 0
    current_start, current_end = intervals[0]
    for s, e in intervals[1:]:
        if s > current_end:
            covered += max(0, current_end - current_start)
            current_start, current_end = s, e
        else:
            current_end = max(current_end, e)
    covered += max(0, current_end - current_start)
    return covered / (end - start)


def analyze(
    timestamps: Sequence[int] | np.ndarray,
    equity: Sequence[float] | np.ndarray,
    trades: Sequence[TradeRecord],
    *,
    timeframe_ms: int,
    buy_and_hold: Mapping[str, tuple[float, float]] | None = None,
    exposure: float | None = None,
) -> PerformanceReport:
    """Compute every metric.

    ``timestamps``/``equity``: the equity curve, one point per candle. ``buy_and_hold`` maps a
    symbol to its (first, last) price over the same period; the comparison is an equal-weight
    portfolio of those symbols. ``exposure`` may be passed when the caller tracked it exactly.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.shape != eq.shape or eq.size == 0:
        raise ValueError("timestamps and equity must be non-empty and the same length")
    if np.any(eq <= 0):
        raise ValueError("equity must stay positive to compute returns")
    ppy = periods_per_year(timeframe_ms)
    returns = eq[1:] / eq[:-1] - 1.0
    n = int(returns.size)
    total_return = float(eq[-1] / eq[0] - 1.0)
    if n > 0:
        try:
            annualized = float((1.0 + total_return) ** (ppy / n) - 1.0)
        except OverflowError:  # a few candles of gains, extrapolated to a year
            annualized = math.inf
        std = float(returns.std(ddof=1)) if n > 1 else 0.0
        mean = float(returns.mean())
        sharpe = mean / std * math.sqrt(ppy) if std > 0 else 0.0
        downside = math.sqrt(float((returns[returns < 0] ** 2).sum()) / n)
        sortino = mean / downside * math.sqrt(ppy) if downside > 0 else 0.0
        volatility = std * math.sqrt(ppy)
    else:
        annualized = sharpe = sortino = volatility = 0.0
    max_dd, dd_duration = _drawdown(eq, ts)
    calmar = annualized / max_dd if max_dd > 0 else 0.0

    pnls = np.array([t.pnl for t in trades], dtype=np.float64)
    wins = pnls[pnls > 0]
    losses = pnls[pnls <= 0]
    gross_profit = float(wins.sum())
    gross_loss = float(-losses.sum())
    avg_win = float(wins.mean()) if wins.size else 0.0
    avg_loss = float(-losses.mean()) if losses.size else 0.0
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else 0.0
    if avg_loss > 0:
        win_loss_ratio = avg_win / avg_loss
    else:
        win_loss_ratio = math.inf if avg_win > 0 else 0.0
    holds = [t.exit_time - t.entry_time for t in trades]
    if buy_and_hold:
        bh = float(np.mean([last / first - 1.0 for first, last in buy_and_hold.values()]))
    else:
        bh = 0.0
    return PerformanceReport(
        initial_equity=float(eq[0]),
        final_equity=float(eq[-1]),
        total_return=total_return,
        annualized_return=annualized,
        max_drawdown=max_dd,
        max_drawdown_duration_ms=dd_duration,
        sharpe=sharpe,
        sortino=sortino,
        calmar=calmar,
        volatility_annualized=volatility,
        trades=len(trades),
        wins=int(wins.size),
        losses=int(losses.size),
        win_rate=float(wins.size / len(trades)) if trades else 0.0,
        win_loss_ratio=win_loss_ratio,
        profit_factor=profit_factor,
        expectancy=float(pnls.mean()) if trades else 0.0,
        average_trade=float(pnls.mean()) if trades else 0.0,
        average_hold_ms=float(np.mean(holds)) if holds else 0.0,
        exposure=exposure if exposure is not None else _exposure(trades, int(ts[0]), int(ts[-1])),
        fees_paid=float(sum(t.fees for t in trades)),
        buy_and_hold_return=bh,
        periods=n,
        periods_per_year=ppy,
    )
