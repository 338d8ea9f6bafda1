"""``report.html``: one self-contained page (inline SVG, no script, no network).

Equity curve, drawdown, each symbol's price with its entries and exits marked, monthly returns
and the metrics table.
"""

from __future__ import annotations

import html
import itertools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from kmg_autotrader.backtest.runner import BacktestResult

W, H, PAD = 960, 260, 40
MAX_POINTS = 1500


def _downsample(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    """At most ~MAX_POINTS points, keeping each bucket's min and max (spikes stay visible)."""
    n = len(x)
    if n <= MAX_POINTS:
        return x, y
    edges = np.linspace(0, n, MAX_POINTS // 2 + 1, dtype=np.int64)
    idx: list[int] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        a, b = lo + int(np.argmin(seg)), lo + int(np.argmax(seg))
        idx.extend(sorted((a, b)))
    sel = np.array(idx)
    return x[sel], y[sel]


def _fmt_day(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


class _Frame:
    """Maps data coordinates onto an SVG box."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float) -> None:
        self.x0, self.x1 = x0, x1 if x1 > x0 else x0 + 1
        pad = (y1 - y0) * 0.05 or abs(y0) * 0.01 or 1.0
        self.y0, self.y1 = y0 - pad, y1 + pad

    def x(self, v: Any) -> Any:
        return PAD + (np.asarray(v, dtype=float) - self.x0) / (self.x1 - self.x0) * (W - 2 * PAD)

    def y(self, v: Any) -> Any:
        return (
            H - PAD - (np.asarray(v, dtype=float) - self.y0) / (self.y1 - self.y0) * (H - 2 * PAD)
        )


def _axes(frame: _Frame, title: str, fmt: str = "{:,.2f}") -> str:
    parts = [f'<text x="{PAD}" y="16" class="t">{html.escape(title)}</text>']
    for v in np.linspace(frame.y0, frame.y1, 5):
        y = float(frame.y(v))
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}" class="g"/>')
        parts.append(f'<text x="2" y="{y + 4:.1f}" class="a">{fmt.format(v)}</text>')
    for v in np.linspace(frame.x0, frame.x1, 5):
        x = float(frame.x(v))
        parts.append(f'<text x="{x - 30:.1f}" y="{H - 12}" class="a">{_fmt_day(v)}</text>')
    return "".join(parts)


def _line_chart(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], title: str, color: str, fmt: str = "{:,.2f}"
) -> tuple[str, _Frame]:
    xs, ys = _downsample(x, y)
    frame = _Frame(float(x[0]), float(x[-1]), float(np.nanmin(y)), float(np.nanmax(y)))
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(frame.x(xs), frame.y(ys), strict=True))
    body = (
        f'<svg viewBox="0 0 {W} {H}" width="100%">{_axes(frame, title, fmt)}'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{pts}"/>'
    )
    return body, frame


def _price_chart(result: BacktestResult, symbol: str) -> str:
    prices = result.prices.get(symbol)
    if prices is None or prices.empty:
        return ""
    ts = prices["timestamp"].to_numpy()
    close = prices["close"].to_numpy()
    body, frame = _line_chart(ts, close, f"{symbol} close, entries ▲ exits ▼", "#555")
    marks = []
    for t in result.trades:
        if t.symbol != symbol:
            continue
        ex, ey = float(frame.x(t.entry_time)), float(frame.y(t.entry_price))
        xx, xy = float(frame.x(t.exit_time)), float(frame.y(t.exit_price))
        color = "#1a7f37" if t.pnl > 0 else "#cf222e"
        marks.append(
            f'<path d="M{ex:.1f},{ey + 2:.1f} l-4,7 h8 z" fill="#0969da"/>'
            f'<path d="M{xx:.1f},{xy - 2:.1f} l-4,-7 h8 z" fill="{color}"/>'
        )
    return body + "".join(marks) + "</svg>"


def _monthly_table(result: BacktestResult) -> str:
    series = pd.Series(result.equity, index=pd.to_datetime(result.timestamps, unit="ms", utc=True))
    month_end = series.resample("ME").last()
    start = pd.Series([series.iloc[0]])
    prev = pd.concat([start, month_end.iloc[:-1]], ignore_index=True).to_numpy()
    returns = month_end.to_numpy() / prev - 1.0
    rows = []
    for when, r in zip(month_end.index, returns, strict=True):
        color = "#1a7f37" if r > 0 else ("#cf222e" if r < 0 else "#555")
        rows.append(
            f"<tr><td>{when.strftime('%Y-%m')}</td>"
            f'<td style="color:{color};text-align:right">{r * 100:+.2f} %</td></tr>'
        )
    return "<table><tr><th>month</th><th>return</th></tr>" + "".join(rows) + "</table>"


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for key, value in metrics.items():
        if isinstance(value, float):
            text = f"{value:,.6g}"
        else:
            text = html.escape(str(value))
        rows.append(f"<tr><td>{html.escape(key)}</td><td>{text}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px} td,th{padding:2px 10px;border-bottom:1px solid #eee}
.t{font-size:13px;font-weight:600} .a{font-size:10px;fill:#666} .g{stroke:#eee}
"""


def render_report(result: BacktestResult, metrics: dict[str, Any]) -> str:
    """The whole page as a string."""
    ts, eq = result.timestamps, result.equity
    equity_svg, _ = _line_chart(ts, eq, "Equity (quote currency)", "#0969da")
    peaks = np.maximum.accumulate(eq)
    dd = -(1.0 - eq / peaks) * 100
    dd_svg, _ = _line_chart(ts, dd, "Drawdown (%)", "#cf222e", "{:.2f}")
    req = result.request
    title = (
        f"Backtest — {req.strategy} on {req.exchange} {req.timeframe}, "
        f"{_fmt_day(float(ts[0]))} → {_fmt_day(float(ts[-1]))}"
    )
    prices = "".join(_price_chart(result, s) for s in result.symbols)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(result.trades)} closed trades on {', '.join(result.symbols)}; "
        f"total return {result.report.total_return * 100:+.2f} %, max drawdown "
        f"{result.report.max_drawdown * 100:.2f} %.</p>"
        f"<h2>Equity</h2>{equity_svg}</svg><h2>Drawdown</h2>{dd_svg}</svg>"
        f"<h2>Trades on price</h2>{prices or '<p>no price data kept</p>'}"
        f"<h2>Monthly returns</h2>{_monthly_table(result)}"
        f"<h2>Metrics</h2>{_metrics_table(metrics)}</body></html>"
    )
