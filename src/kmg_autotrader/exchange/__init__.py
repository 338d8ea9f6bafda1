"""Exchange adapter over ccxt's async API (Binance and Kraken first-class, any ccxt id).

Names load on first use (PEP 562): importing the error classes or the capabilities does not
load ccxt (~1.6 s and ~90 MB), which the paper exchange and the backtester never need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULE_OF = {
    "ExchangeAdapter": "adapter",
    "RetryPolicy": "adapter",
    "timeframe_ms": "adapter",
    "CAPABILITIES": "capabilities",
    "ExchangeCapabilities": "capabilities",
    "HistoryPath": "capabilities",
    "capabilities_for": "capabilities",
    "choose_history_path": "capabilities",
    "load_markets_snapshot": "markets",
    "save_markets_snapshot": "markets",
}


def __getattr__(name: str) -> Any:
    """Load an exported name from its submodule on first use."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_MODULE_OF.get(name, 'errors')}")
    value = getattr(module, name)
    globals()[name] = value
    return value
