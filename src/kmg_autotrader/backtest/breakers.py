"""The equity marks between events that the risk manager's breakers need.

The live loop marks equity (cash plus holdings at the last closes) on every closed candle;
the drawdown breaker and the daily kill-switch trip on the first mark that reaches their
limit, and stay tripped even if the price recovers. The event loop only marks on events, so
a dip between two events would go unseen. Between fills the holdings are constant, so the
marks the live loop would make are a vectorised product of closes: :class:`BreakerWatch`
computes them up to the end of the current UTC day and names the next candle whose mark
changes the risk state — a new peak before a trip, the first candle reaching a limit, or the
first candle of the next UTC day (its mark is the day's starting equity). Marking only those
candles leaves the risk state exactly as the every-candle marks leave it, wherever it is read.
A candle named needlessly (a float margin at a limit) only adds a mark the live loop makes too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from kmg_autotrader.backtest.tracks import SymbolTrack
from kmg_autotrader.execution.paper.engine import PaperEngine
from kmg_autotrader.risk.state import RiskState
from kmg_autotrader.risk.tracking import DAY_MS

Int64Array = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
_MARGIN = 1e-9  # percent: float limits checked a hair early; an extra mark is harmless


class BreakerWatch:
    """Finds the next candle between events whose equity mark the risk manager must see.

    ``timeline`` holds every candle open time (all symbols); a mark for candle ``j`` happens at
    its close, ``timeline[j] + timeframe_ms``. ``state`` returns the risk manager's state.
    Equity is computed here in floats, :meth:`BacktestPortfolio.equity
    <kmg_autotrader.backtest.runner.BacktestPortfolio.equity>` (the mark itself, equal to the
    live loop's) in Decimals; the float path only chooses the candles to mark, and the limits
    are checked a hair early (``_MARGIN``) so a float rounding cannot skip a crossing.
    """

    def __init__(
        self,
        tracks: Mapping[str, SymbolTrack],
        timeline: Int64Array,
        timeframe_ms: int,
        paper: PaperEngine,
        quote: str,
        state: Callable[[], RiskState],
        *,
        max_drawdown_percent: float,
        daily_loss_limit_percent: float,
    ) -> None:
        self.tracks = tracks
        self.timeline = timeline
        self.close_ms = timeline + timeframe_ms
        self.tf = timeframe_ms
        self.paper = paper
        self.quote = quote
        self.state = state
        self.max_drawdown = max_drawdown_percent - _MARGIN
        self.daily_loss = daily_loss_limit_percent - _MARGIN
        # spot equity never falls to zero: limits of 100 % cannot trip, nothing to watch
        self.active = max_drawdown_percent < 100 or daily_loss_limit_percent < 100
        self._key: tuple[object, ...] | None = None
        self._next: int | None = None

    def _closes(self, track: SymbolTrack, lo: int, hi: int) -> FloatArray:
        """``track``'s last close at or before each timeline candle ``lo..hi-1`` (NaN: none)."""
        at = self.timeline[lo:hi]
        if len(track.timestamp) == len(self.timeline) and track.timestamp[0] == self.timeline[0]:
            return track.close[lo:hi]  # the symbol has a candle at every point
        idx = np.searchsorted(track.timestamp, at, side="right") - 1
        return np.where(idx >= 0, track.close[np.clip(idx, 0, None)], np.nan)

    def equity(self, lo: int, hi: int) -> FloatArray:
        """The marks the live loop would make on timeline candles ``lo..hi-1`` with the
        current balances (cash plus holdings at the last closes)."""
        total = np.zeros(hi - lo)
        for currency, (free, used) in self.paper.balances.items():
            amount = free + used
            if not amount:
                continue
            if currency == self.quote:
                total += float(amount)
                continue
            track = self.tracks.get(f"{currency}/{self.quote}")
            if track is None:
                continue
            value = float(amount) * self._closes(track, lo, hi)
            if track.timestamp[0] > self.timeline[lo]:  # no close yet at the first points
                value = np.where(np.isnan(value), 0.0, value)
            total += value
        return total

    def next_mark(self, now_ms: int) -> int | None:
        """Close time (ms) of the next candle after ``now_ms`` whose mark matters, or None.

        Cached until the balances change (a fill) or the risk state's day or trips change;
        the marks made meanwhile at events lie on the same equity path, so the answer holds.
        """
        state = self.state()
        key = (
            len(self.paper.trades),
            state.day,
            state.breaker_tripped,
            state.kill_switch_tripped,
        )
        if key == self._key and self._next is not None and self._next > now_ms:
            return self._next
        j = self._find(now_ms, state)
        self._key = key
        self._next = None if j is None else int(self.close_ms[j])
        return self._next

    def marked(self) -> None:
        """A mark was made at the scheduled candle: the next one must be looked up afresh."""
        self._key = None

    def _find(self, now_ms: int, state: RiskState) -> int | None:
        n = len(self.timeline)
        lo = int(self.close_ms.searchsorted(now_ms, side="right"))
        if lo >= n:
            return None
        day = int(self.close_ms[lo]) // DAY_MS
        if state.day is None or day != state.day:
            return lo  # the first mark of a UTC day: the day's starting equity
        hi = int(self.close_ms.searchsorted((day + 1) * DAY_MS, side="left"))
        equity = self.equity(lo, hi)
        peak0 = -np.inf if state.peak_equity is None else float(state.peak_equity)
        peak = np.maximum(np.maximum.accumulate(equity), peak0)
        trip = np.zeros(hi - lo, dtype=bool)
        if not state.breaker_tripped:
            with np.errstate(divide="ignore", invalid="ignore"):
                trip |= (peak > 0) & ((peak - equity) / peak * 100 >= self.max_drawdown)
        start = None if state.day_start_equity is None else float(state.day_start_equity)
        if not state.kill_switch_tripped and start is not None and start > 0:
            trip |= (start - equity) / start * 100 >= self.daily_loss
        hits = np.flatnonzero(trip)
        end = int(hits[0]) if hits.size else hi - lo
        if end > 0:
            best = int(np.argmax(equity[:end]))
            if equity[best] > peak0:
                return lo + best  # a new peak, before any trip: the breaker measures from it
        if hits.size:
            return lo + end
        return hi if hi < n else None
