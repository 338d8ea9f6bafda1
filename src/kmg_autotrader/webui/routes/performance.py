"""``GET /metrics`` and ``GET /equity``: figures and the equity curve, from the records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from kmg_autotrader.webui import queries
from kmg_autotrader.webui.context import WebContext, get_context
from kmg_autotrader.webui.metrics import compute_metrics
from kmg_autotrader.webui.routes.common import SECURED, time_query
from kmg_autotrader.webui.schemas import EquityResponse, MetricsResponse

router = APIRouter(tags=["performance"], **SECURED)


@router.get("/metrics", response_model=MetricsResponse)
def metrics(context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Total return, max drawdown, Sharpe, win rate, profit factor, trades, fees, PnL."""
    db, mode = context.repos.db, context.mode
    # a year of 5-minute points takes ~0.4 s to read: recompute only when a record moved
    markers = queries.change_markers(db, mode)
    key = (markers["equity"], markers["closed_positions"])
    cached = context.cache.get("metrics")
    if cached is not None and cached[0] == key:
        figures = dict(cached[1])
    else:
        timestamps, equity = queries.equity_values(db, mode)
        trades = queries.closed_trades(db, mode)
        figures = compute_metrics(
            timestamps, equity, trades, timeframe_ms=context.settings.timeframe_ms
        )
        context.cache["metrics"] = (key, dict(figures))
    figures["mode"] = mode.value
    figures["open_positions"] = len(context.repos.positions.open_positions(mode))
    return figures


@router.get("/equity", response_model=EquityResponse)
def equity(
    since: int = time_query(0, "From this time (UTC epoch ms)."),
    until: int | None = time_query(None, "Up to this time (UTC epoch ms)."),
    max_points: int = Query(500, ge=2, le=5000, description="Downsample to at most this many."),
    context: WebContext = Depends(get_context),
) -> dict[str, Any]:
    """The equity curve, oldest first."""
    points, total = queries.equity_curve(
        context.repos.db, context.mode, since=since, until=until, max_points=max_points
    )
    return {
        "mode": context.mode.value,
        "points": points,
        "total_points": total,
        "downsampled": len(points) < total,
    }
