"""The terminal summary of a backtest (a rich table)."""

from __future__ import annotations

from rich.table import Table

from kmg_autotrader.backtest.runner import BacktestResult
from kmg_autotrader.domain.clock import ms_to_iso


def _pct(x: float) -> str:
    return f"{x * 100:+.2f} %"


def summary_table(result: BacktestResult) -> Table:
    """Headline figures, then trades per symbol."""
    r = result.report
    req = result.request
    table = Table(
        title=f"Backtest: {req.strategy} · {req.exchange} {req.timeframe} · "
        f"{ms_to_iso(int(result.timestamps[0]))} → {ms_to_iso(int(result.timestamps[-1]))}",
        show_header=False,
    )
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("initial equity", f"{r.initial_equity:,.2f} {req.quote}"),
        ("final equity", f"{r.final_equity:,.2f} {req.quote}"),
        ("total return", _pct(r.total_return)),
        ("buy & hold return", _pct(r.buy_and_hold_return)),
        ("max drawdown", f"{r.max_drawdown * 100:.2f} %"),
        ("sharpe / sortino / calmar", f"{r.sharpe:.2f} / {r.sortino:.2f} / {r.calmar:.2f}"),
        ("trades (closed)", f"{r.trades:,}  (open at end: {result.open_positions})"),
        ("win rate", f"{r.win_rate * 100:.1f} %"),
        ("profit factor", f"{r.profit_factor:.2f}"),
        ("expectancy", f"{r.expectancy:,.4f} {req.quote}"),
        ("fees paid", f"{r.fees_paid:,.2f} {req.quote}"),
        ("exposure", f"{r.exposure * 100:.1f} %"),
    ]
    if result.recorder.rejections:
        top = ", ".join(f"{k} {v}" for k, v in result.recorder.rejections.most_common(4))
        rows.append(("risk rejections", top))
    rows.append(
        (
            "run",
            f"{result.candles:,} candles in {result.elapsed_s:.2f} s "
            f"({result.candles / max(result.elapsed_s, 1e-9):,.0f} candles/s)",
        )
    )
    for name, value in rows:
        table.add_row(name, value)
    return table
