"""The local exchange venue (``kmg venue``): real Binance and Kraken APIs on 127.0.0.1.

Real ccxt classes, pointed at it with ``EXCHANGE_API_URL`` (see
:mod:`kmg_autotrader.exchange.urls`), trade against replayed candles with the venue's fees,
minimums and precision; the venue keeps its own books (the truth tests compare with), checks
request signatures, and injects faults on demand or at random (``--chaos SEED``).

Modules: :mod:`.clock` (venue time), :mod:`.market` (replayed candles, prices, books, trades),
:mod:`.accounts` (books per API key, persistence), :mod:`.faults` (fault plan, chaos),
:mod:`.server` (the server, replay loop, WS fan-out, control endpoint, :class:`VenueClient`),
:mod:`.binance` and :mod:`.kraken` (the dialects), :mod:`.cli` (``kmg venue``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Lazy exports: ``kmg --help`` imports this package for ``kmg venue`` and must not pay for
# aiohttp, pandas and the paper engine.
_EXPORTS = {
    "Account": "accounts",
    "Accounts": "accounts",
    "AccountSpec": "server",
    "Candle": "market",
    "Dialect": "server",
    "Fault": "faults",
    "FaultError": "faults",
    "FaultPlan": "faults",
    "MarketListener": "market",
    "MarketState": "market",
    "SynthTrade": "market",
    "Venue": "server",
    "VenueClient": "server",
    "VenueClock": "clock",
    "VenueError": "server",
    "WsConnection": "server",
    "WsHub": "server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
