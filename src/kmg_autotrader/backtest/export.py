"""A backtest's files: trades.csv, equity.csv, metrics.json and report.html."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from kmg_autotrader.backtest.report_html import render_report
from kmg_autotrader.backtest.runner import BacktestResult

TRADE_COLUMNS = (
    "symbol",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "amount",
    "fees",
    "pnl",
    "exit_reason",
)


def metrics_dict(result: BacktestResult) -> dict[str, Any]:
    """Every metric of the performance report plus the run's context (JSON-safe)."""
    out: dict[str, Any] = dict(result.report.to_dict())
    req = result.request
    out.update(
        strategy=req.strategy,
        exchange=req.exchange,
        timeframe=req.timeframe,
        symbols=result.symbols,
        start=int(result.timestamps[0]),
        end=int(result.timestamps[-1]),
        candles=result.candles,
        open_positions_at_end=result.open_positions,
        stake_amount=None if req.stake_amount is None else float(req.stake_amount),
        advisor=req.advisor_mode,
        risk_rejections=dict(result.recorder.rejections),
        elapsed_seconds=round(result.elapsed_s, 3),
    )
    return out


def write_trades(path: Path, result: BacktestResult) -> None:
    """One row per closed trade; times in UTC epoch ms."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRADE_COLUMNS)
        for t in result.trades:
            writer.writerow(
                [
                    t.symbol,
                    t.entry_time,
                    repr(t.entry_price),
                    t.exit_time,
                    repr(t.exit_price),
                    repr(t.amount),
                    repr(t.fees),
                    repr(t.pnl),
                    t.exit_reason,
                ]
            )


def write_equity(path: Path, result: BacktestResult) -> None:
    """One row per candle: its open time (UTC epoch ms) and the equity marked at its close."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write("timestamp,equity\n")
        handle.writelines(
            f"{int(ts)},{eq:.8f}\n"
            for ts, eq in zip(result.timestamps.tolist(), result.equity.tolist(), strict=True)
        )


def export(result: BacktestResult, directory: Path | str) -> list[Path]:
    """Write all four files into ``directory`` (created); returns their paths."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / n for n in ("trades.csv", "equity.csv", "metrics.json", "report.html")]
    write_trades(paths[0], result)
    write_equity(paths[1], result)
    paths[2].write_text(json.dumps(metrics_dict(result), indent=2) + "\n", encoding="utf-8")
    paths[3].write_text(render_report(result, metrics_dict(result)), encoding="utf-8")
    return paths
