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

from kmg_autotrader.venue.accounts import Account, Accounts
from kmg_autotrader.venue.clock import VenueClock
from kmg_autotrader.venue.faults import Fault, FaultError, FaultPlan
from kmg_autotrader.venue.market import Candle, MarketListener, MarketState, SynthTrade
from kmg_autotrader.venue.server import (
    AccountSpec,
    Dialect,
    Venue,
    VenueClient,
    VenueError,
    WsConnection,
    WsHub,
)

__all__ = [
    "Account",
    "AccountSpec",
    "Accounts",
    "Candle",
    "Dialect",
    "Fault",
    "FaultError",
    "FaultPlan",
    "MarketListener",
    "MarketState",
    "SynthTrade",
    "Venue",
    "VenueClient",
    "VenueClock",
    "VenueError",
    "WsConnection",
    "WsHub",
]
