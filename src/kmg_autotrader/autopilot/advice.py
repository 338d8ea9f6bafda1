"""The advisor's prompt context for the live loop, built from the records: recent candles,
open positions, recent trades and the risk state (the pipeline stage itself is
:class:`kmg_autotrader.advisor.stage.AdvisorPipelineStage`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kmg_autotrader.advisor.context import AdvisorContext, CandleSummary
from kmg_autotrader.autopilot.history import CandleHistory
from kmg_autotrader.domain import Candidate, Mode
from kmg_autotrader.storage.repositories import Repositories


def context_source(
    *,
    repos: Repositories,
    mode: Mode,
    history: CandleHistory,
    timeframe_ms: int,
    risk_status: Callable[[], dict[str, Any]],
) -> Callable[[Candidate], AdvisorContext]:
    """A function that builds the advisor context for a candidate, at the time it is asked."""

    def build(candidate: Candidate) -> AdvisorContext:
        candles = history.recent(candidate.symbol)
        status = risk_status()
        equity = status.get("equity") or {}
        daily = status.get("daily") or {}
        return AdvisorContext(
            candles=CandleSummary.from_candles(candles, timeframe_ms) if candles else None,
            open_positions=repos.positions.open_positions(mode),
            recent_trades=repos.positions.closed_positions(mode, limit=5),
            risk_state={
                "equity": equity.get("last"),
                "drawdown_percent": equity.get("drawdown_percent"),
                "trades_today": daily.get("trades"),
                "realized_pnl_today": daily.get("realized_pnl"),
                "breaker_tripped": (status.get("breaker") or {}).get("tripped"),
            },
        )

    return build
