"""What the advisor is told besides the candidate: market summary, positions, trades, risk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kmg_autotrader.domain import Candle, Position


@dataclass(frozen=True, slots=True)
class CandleSummary:
    """A compact, deterministic description of the recent candles (prompt-sized).

    Changes and ranges are fractions (0.01 = 1 %). ``closes`` are the last few closes, oldest
    first. Everything is read from the last day of candles only (``change_24h`` spans the day
    window: 287 bars on 5m), so a caller holding 400 candles and one holding exactly a day's
    worth describe the same moment identically — which keeps replay keys equal between the
    live loop and a backtest.
    """

    bars: int
    last_close: float
    change_1h: float | None
    change_4h: float | None
    change_24h: float | None
    high: float
    low: float
    avg_range: float
    volume_ratio: float | None
    closes: tuple[float, ...] = ()

    @classmethod
    def from_candles(
        cls, candles: Sequence[Candle], timeframe_ms: int, *, last_closes: int = 12
    ) -> CandleSummary:
        """Summarise ``candles`` (oldest first, closed candles only) of ``timeframe_ms``."""
        if not candles:
            raise ValueError("need at least one candle to summarise")
        last = candles[-1]
        day_bars = max(2, 86_400_000 // timeframe_ms)
        window = candles[-day_bars:]

        def change(minutes: int) -> float | None:
            back = min(max(1, (minutes * 60_000) // timeframe_ms), day_bars - 1)
            if len(window) <= back:
                return None
            ref = window[-1 - back].close
            return (last.close - ref) / ref if ref > 0 else None

        ranges = [(c.high - c.low) / c.close for c in window if c.close > 0]
        volumes = [c.volume for c in window[:-1]]
        avg_volume = sum(volumes) / len(volumes) if volumes else 0.0
        return cls(
            bars=len(candles),
            last_close=last.close,
            change_1h=change(60),
            change_4h=change(240),
            change_24h=change(1440),
            high=max(c.high for c in window),
            low=min(c.low for c in window),
            avg_range=sum(ranges) / len(ranges) if ranges else 0.0,
            volume_ratio=last.volume / avg_volume if avg_volume > 0 else None,
            closes=tuple(c.close for c in window[-last_closes:]),
        )


@dataclass(frozen=True, slots=True)
class AdvisorContext:
    """Everything besides the candidate that goes into the prompt.

    ``indicators``: extra indicator values (the candidate's own signal snapshots are always
    included). ``open_positions``: positions open now. ``recent_trades``: recently closed
    positions (their outcomes). ``risk_state``: plain values such as equity, drawdown, daily PnL,
    exposure — rendered as ``key=value`` sorted by key.
    """

    candles: CandleSummary | None = None
    indicators: Mapping[str, float] = field(default_factory=dict)
    open_positions: Sequence[Position] = ()
    recent_trades: Sequence[Position] = ()
    risk_state: Mapping[str, Any] = field(default_factory=dict)
