"""Plain typed values that flow through the pipeline.

Units, everywhere in the code base:

* prices are in the quote currency (USDT for ``BTC/USDT``);
* amounts are in the base currency (BTC for ``BTC/USDT``);
* times are UTC epoch milliseconds (``int``);
* money that is stored (orders, fills, balances, positions) is ``Decimal``;
  indicator values and vectorised backtest math use ``float``.

This package depends on nothing else in ``kmg_autotrader``.
"""

from kmg_autotrader.domain.decisions import (
    AdvisorDecision,
    Candidate,
    FilterStep,
    RiskDecision,
    Signal,
)
from kmg_autotrader.domain.enums import (
    AdvisorAction,
    ExecutionMode,
    Mode,
    OrderStatus,
    OrderType,
    Regime,
    Side,
)
from kmg_autotrader.domain.market import Balance, Candle, EquityPoint, MarketInfo
from kmg_autotrader.domain.orders import Fill, Order, OrderIntent, Position

__all__ = [
    "AdvisorAction",
    "AdvisorDecision",
    "Balance",
    "Candidate",
    "Candle",
    "EquityPoint",
    "ExecutionMode",
    "Fill",
    "FilterStep",
    "MarketInfo",
    "Mode",
    "Order",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "Position",
    "Regime",
    "RiskDecision",
    "Side",
    "Signal",
]
