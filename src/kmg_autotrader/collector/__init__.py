"""Market data collection: history backfill, file import, trades aggregation, live streams.

Names load on first use (PEP 562): importing a submodule such as ``cli_commands`` does not load
the exchange adapter (ccxt) or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kmg_autotrader.collector.aggregate import TradeAggregator, trades_to_candles
    from kmg_autotrader.collector.events import Backoff, EventCallback
    from kmg_autotrader.collector.history import (
        DownloadProgress,
        DownloadResult,
        HistoryDownloader,
    )
    from kmg_autotrader.collector.importer import ImportFormatError, read_candle_file
    from kmg_autotrader.collector.stream import CandleStream, PriceStream, PriceTick

__all__ = [
    "Backoff",
    "CandleStream",
    "DownloadProgress",
    "DownloadResult",
    "EventCallback",
    "HistoryDownloader",
    "ImportFormatError",
    "PriceStream",
    "PriceTick",
    "TradeAggregator",
    "read_candle_file",
    "trades_to_candles",
]

#: public name → submodule that defines it
_MODULE_OF = {
    "TradeAggregator": "aggregate",
    "trades_to_candles": "aggregate",
    "Backoff": "events",
    "EventCallback": "events",
    "DownloadProgress": "history",
    "DownloadResult": "history",
    "HistoryDownloader": "history",
    "ImportFormatError": "importer",
    "read_candle_file": "importer",
    "CandleStream": "stream",
    "PriceStream": "stream",
    "PriceTick": "stream",
}


def __getattr__(name: str) -> Any:
    """Load an exported name from its submodule on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Module attributes, including the lazily loaded ones."""
    return sorted(set(globals()) | set(__all__))
