"""Per-exchange quirks kept as data (never ``if exchange == ...`` branches).

The history downloader and the adapter read these records to choose how to page history and
which ccxt options to set. Exchanges not listed get :data:`DEFAULT_CAPABILITIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class HistoryPath(StrEnum):
    """How candle history is obtained for an exchange."""

    OHLCV = "ohlcv"  # paginated fetch_ohlcv
    TRADES = "trades"  # paginated fetch_trades aggregated into candles


@dataclass(frozen=True, slots=True)
class ExchangeCapabilities:
    """What an exchange can do for market data, and ccxt options it needs.

    ``ohlcv_recent_only`` is the number of most recent candles the OHLC endpoint serves when it
    cannot page further back (Kraken: 720); ``None`` means full history is pageable.
    ``trades_cursor`` names how to continue a trades page: ``"since"`` (next ``since`` = last
    trade time) or ``"kraken_last"`` (Kraken's nanosecond ``last`` cursor from the response).
    """

    ohlcv_page_limit: int = 500
    ohlcv_recent_only: int | None = None
    trades_history: bool = False
    trades_page_limit: int = 1000
    trades_cursor: str = "since"
    first_class: bool = False
    ccxt_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ohlcv_history(self) -> bool:
        """True when fetch_ohlcv can page arbitrarily far back."""
        return self.ohlcv_recent_only is None


CAPABILITIES: Mapping[str, ExchangeCapabilities] = MappingProxyType(
    {
        "binance": ExchangeCapabilities(
            ohlcv_page_limit=1000,
            trades_history=True,
            first_class=True,
            # A spot bot: skip the futures exchangeInfo endpoints when loading markets.
            ccxt_options=MappingProxyType(
                {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}
            ),
        ),
        "kraken": ExchangeCapabilities(
            ohlcv_page_limit=720,
            ohlcv_recent_only=720,
            trades_history=True,
            trades_page_limit=1000,
            trades_cursor="kraken_last",
            first_class=True,
        ),
    }
)

DEFAULT_CAPABILITIES = ExchangeCapabilities()


def capabilities_for(exchange_id: str) -> ExchangeCapabilities:
    """The capability record of ``exchange_id`` (defaults for exchanges not listed)."""
    return CAPABILITIES.get(exchange_id.lower(), DEFAULT_CAPABILITIES)


def choose_history_path(
    caps: ExchangeCapabilities, since_ms: int, now_ms: int, timeframe_ms: int
) -> HistoryPath:
    """OHLCV when the endpoint reaches back to ``since_ms``, else trades when available."""
    if caps.ohlcv_recent_only is None:
        return HistoryPath.OHLCV
    reachable_from = now_ms - caps.ohlcv_recent_only * timeframe_ms
    if since_ms >= reachable_from or not caps.trades_history:
        return HistoryPath.OHLCV
    return HistoryPath.TRADES
