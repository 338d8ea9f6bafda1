"""Recent closed candles per symbol, kept in memory for the advisor's market summary."""

from __future__ import annotations

from collections import deque

from kmg_autotrader.domain import Candle


class CandleHistory:
    """The last ``size`` closed candles of every symbol (oldest first)."""

    def __init__(self, size: int = 400) -> None:
        self.size = size
        self._candles: dict[str, deque[Candle]] = {}

    def add(self, symbol: str, candle: Candle) -> None:
        """Remember a newly closed candle."""
        self._candles.setdefault(symbol, deque(maxlen=self.size)).append(candle)

    def clear(self, symbol: str) -> None:
        """Forget ``symbol`` (after a gap the summary must not bridge the hole)."""
        self._candles.pop(symbol, None)

    def recent(self, symbol: str) -> list[Candle]:
        """The remembered candles of ``symbol``, oldest first."""
        return list(self._candles.get(symbol, ()))
