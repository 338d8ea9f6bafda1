"""Daily/weekly PnL summaries and state snapshots, built from the stored records only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kmg_autotrader import __version__
from kmg_autotrader.domain import Mode, Position
from kmg_autotrader.domain.clock import ms_to_iso
from kmg_autotrader.storage.repositories import Repositories


def _closed_between(repos: Repositories, mode: Mode, start: int, end: int) -> list[Position]:
    out: list[Position] = []
    offset = 0
    while True:
        page = repos.positions.closed_positions(mode, limit=1000, offset=offset, since=start)
        out.extend(p for p in page if p.closed_at is not None and p.closed_at < end)
        if len(page) < 1000:
            return out
        offset += 1000


def period_summary(
    repos: Repositories, mode: Mode, start: int, end: int, *, quote: str
) -> dict[str, Any]:
    """PnL of positions closed in ``[start, end)`` and the equity change over the period."""
    closed = _closed_between(repos, mode, start, end)
    pnl = sum((p.realized_pnl for p in closed), Decimal(0))
    fees = sum((p.fees_paid for p in closed), Decimal(0))
    # every point of the period, streamed (a week of 5-minute candles is 2,016 points)
    equity_start: Decimal | None = None
    equity_end: Decimal | None = None
    peak: Decimal | None = None
    worst: float | None = None  # the deepest fall from a positive peak so far, in %
    for point in repos.equity.between(mode, start, end):
        if equity_start is None:
            equity_start = point.equity
        equity_end = point.equity
        peak = point.equity if peak is None else max(peak, point.equity)
        if peak > 0:
            fall = float((peak - point.equity) / peak * 100)
            worst = fall if worst is None else max(worst, fall)
    # a percentage of nothing is undefined: an account marked at 0 (e.g. a LIVE account
    # before its first balance) gives None ("n/a"), never a division error
    pnl_pct = (
        float(pnl / equity_start * 100) if equity_start is not None and equity_start > 0 else None
    )
    trough_dd = worst if worst is not None else (None if equity_start is not None else 0.0)
    return {
        "start": start,
        "end": end,
        "day": ms_to_iso(start)[:10],
        "currency": quote,
        "trades": len(closed),
        "wins": sum(1 for p in closed if p.realized_pnl > 0),
        "losses": sum(1 for p in closed if p.realized_pnl <= 0),
        "pnl": pnl,
        "pnl_pct": pnl_pct,
        "fees": fees,
        "equity": equity_end,
        "equity_peak": peak,
        "max_drawdown_pct": trough_dd,
    }


def summary_line(summary: dict[str, Any], key: str = "day") -> str:
    """One human line for a period summary; undefined figures read "n/a"."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.2f} %"

    equity = summary.get("equity")
    drawdown = summary.get("max_drawdown_pct")
    return (
        f"{key} {summary[key]}: PnL {summary['pnl']} {summary['currency']} "
        f"({pct(summary.get('pnl_pct'))}), {summary['trades']} trades "
        f"({summary['wins']} won, {summary['losses']} lost), fees {summary['fees']}, "
        f"equity {'n/a' if equity is None else equity}, "
        f"max drawdown {'n/a' if drawdown is None else f'{drawdown:.2f} %'}"
    )


def snapshot_state(
    repos: Repositories,
    mode: Mode,
    *,
    now: int,
    risk: dict[str, Any],
    health: dict[str, Any],
    settings_view: dict[str, Any],
) -> dict[str, Any]:
    """Everything a snapshot holds: metadata, account, risk configuration, open positions,
    performance summary and system health (no secrets: ``settings_view`` is masked)."""
    latest = repos.equity.latest(mode)
    positions = repos.positions.open_positions(mode)
    closed = _closed_between(repos, mode, 0, now + 1)  # every trade, not the newest 1,000
    wins = [p for p in closed if p.realized_pnl > 0]
    return {
        "metadata": {
            "version": __version__,
            "mode": mode.value,
            "at": now,
            "at_iso": ms_to_iso(now),
        },
        "account": {
            "balances": {
                b.currency: {"free": b.free, "used": b.used} for b in repos.balances.all(mode)
            },
            "equity": latest.equity if latest else None,
            "cash": latest.cash if latest else None,
            "equity_at": latest.timestamp if latest else None,
        },
        "risk": risk,
        "open_positions": [
            {
                "id": p.id,
                "symbol": p.symbol,
                "amount": p.amount,
                "entry_price": p.entry_price,
                "stop_loss": p.stop_loss,
                "take_profit": p.take_profit,
                "opened_at": p.opened_at,
            }
            for p in positions
        ],
        "performance": {
            "closed_trades": len(closed),
            "win_rate": len(wins) / len(closed) if closed else None,
            "realized_pnl": sum((p.realized_pnl for p in closed), Decimal(0)),
            "fees_paid": sum((p.fees_paid for p in closed), Decimal(0)),
        },
        "health": health,
        "settings": settings_view,
    }
