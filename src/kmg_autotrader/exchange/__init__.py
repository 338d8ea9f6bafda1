"""Exchange adapter over ccxt's async API (Binance and Kraken first-class, any ccxt id)."""

from kmg_autotrader.exchange.adapter import ExchangeAdapter, RetryPolicy, timeframe_ms
from kmg_autotrader.exchange.capabilities import (
    CAPABILITIES,
    ExchangeCapabilities,
    HistoryPath,
    capabilities_for,
    choose_history_path,
)
from kmg_autotrader.exchange.errors import (
    AmbiguousOrderError,
    AuthenticationFailedError,
    ExchangeAdapterError,
    ExchangeUnavailableError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PermanentExchangeError,
    RateLimitedError,
    TransientExchangeError,
    UnknownSymbolError,
    map_ccxt_error,
)
from kmg_autotrader.exchange.markets import load_markets_snapshot, save_markets_snapshot

__all__ = [
    "CAPABILITIES",
    "AmbiguousOrderError",
    "AuthenticationFailedError",
    "ExchangeAdapter",
    "ExchangeAdapterError",
    "ExchangeCapabilities",
    "ExchangeUnavailableError",
    "HistoryPath",
    "InsufficientFundsError",
    "InvalidOrderError",
    "OrderNotFoundError",
    "PermanentExchangeError",
    "RateLimitedError",
    "RetryPolicy",
    "TransientExchangeError",
    "UnknownSymbolError",
    "capabilities_for",
    "choose_history_path",
    "load_markets_snapshot",
    "map_ccxt_error",
    "save_markets_snapshot",
    "timeframe_ms",
]
