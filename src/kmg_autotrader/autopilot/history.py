"""Recent closed candles per symbol, kept in memory for the advisor's market summary."""

from __future__ import annotations

from collections import deque
from typing import Any

from kmg_autotrader.domain import Candle


class CandleHistory:
    """The last ``size`` closed candles of every symbol (oldest first)."""

    def __init__(self, size: int = 400) -> None:
        self.size = size
        self._candles: dict[str, deque[Candle]] = {}

    def add(self, symbol: str, candle: Candle) -> None:
        """Remember a newly closed candle."""
        self._candles.setdefault(symbol, deque(maxlen=self.size)).append(candle)

    def warm(self, symbol: str, frame: Any) -> int:
        """Fill ``symbol`` from stored closed candles (a DataFrame with timestamp, open, high,
        low, close, volume; oldest first), replacing what was remembered. Called at start so
        the advisor's market summary (and its replay key) is the same right after a restart as
        it would have been without one. Returns how many candles are remembered."""
        self.clear(symbol)
        recent = frame.iloc[-self.size :]
        for row in recent.itertuples(index=False):
            self.add(
                symbol,
                Candle(
                    timestamp=int(row.timestamp),
                    open=float(row.open),
                    high=float(row.high),
                    low=float(row.low),
                    close=float(row.close),
                    volume=float(row.volume),
                ),
            )
        return len(self._candles.get(symbol, ()))

    def clear(self, symbol: str) -> None:
        """Forget ``symbol`` (after a gap the summary must not bridge the hole)."""
        self._candles.pop(symbol, None)

    def recent(self, symbol: str) -> list[Candle]:
        """The remembered candles of ``symbol``, oldest first."""
        return list(self._candles.get(symbol, ()))
