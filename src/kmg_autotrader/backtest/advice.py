"""``--advisor replay``: the advisor answering from recorded calls (by prompt hash), with the
prompt context built from the candles closed so far."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kmg_autotrader.backtest.tracks import SymbolTrack
from kmg_autotrader.domain import Candidate, Candle
from kmg_autotrader.domain.clock import Clock

DAY_BARS = 288  # prompt context: the last day of 5m candles (the summary reads 24 h)


def candle_context(track: SymbolTrack, candidate: Candidate, timeframe_ms: int) -> Any:
    """The advisor context for ``candidate``: a summary of the candles up to its candle."""
    from kmg_autotrader.advisor.context import AdvisorContext, CandleSummary

    k = int(np.searchsorted(track.timestamp, candidate.timestamp))
    lo = max(0, k + 1 - DAY_BARS)
    candles = [
        Candle(
            int(track.timestamp[i]),
            float(track.open[i]),
            float(track.high[i]),
            float(track.low[i]),
            float(track.close[i]),
            float(track.volume[i]),
        )
        for i in range(lo, k + 1)
    ]
    return AdvisorContext(candles=CandleSummary.from_candles(candles, timeframe_ms))


def replay_advisor(
    settings: Any, repos: Any, clock: Clock, tracks: Mapping[str, SymbolTrack], timeframe_ms: int
) -> Any:
    """An ``AdvisorStage`` answering from ``repos.advisor_calls`` (never calls an LLM)."""
    from kmg_autotrader.advisor.factory import build_advisor
    from kmg_autotrader.advisor.stage import AdvisorPipelineStage

    advisor = build_advisor(settings, repos, clock, replay=True)
    return AdvisorPipelineStage(
        advisor, lambda c: candle_context(tracks[c.symbol], c, timeframe_ms)
    )
