"""Market data collection: history backfill, file import, trades aggregation, live streams."""

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
