"""Market data values: candles, market limits, balances, equity points."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from kmg_autotrader.domain.enums import Mode
from kmg_autotrader.domain.fast_init import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle.

    ``timestamp`` is the candle's *open* time in UTC epoch ms. Prices are in the quote currency,
    ``volume`` in the base currency.
    """

    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def is_valid(self) -> bool:
        """True when the OHLC values are physically possible."""
        return (
            self.high >= max(self.open, self.close)
            and self.low <= min(self.open, self.close)
            and self.volume >= 0
            and self.low > 0
        )


@fast_init
@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What the risk and execution layers need to know about one market.

    ``amount_step`` / ``price_step`` are the exchange's precision expressed as a tick size
    (e.g. ``0.00001`` BTC). Fees are fractions (0.001 = 0.1 %).
    """

    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal = Decimal(0)
    min_cost: Decimal = Decimal(0)
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")


@fast_init
@dataclass(frozen=True, slots=True)
class Balance:
    """Holdings of one currency for one mode."""

    mode: Mode
    currency: str
    free: Decimal
    used: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        """Free plus reserved by open orders."""
        return self.free + self.used


@fast_init
@dataclass(frozen=True, slots=True)
class EquityPoint:
    """Account equity (quote currency) marked to market at ``timestamp`` (UTC epoch ms)."""

    mode: Mode
    timestamp: int
    equity: Decimal
    cash: Decimal
    positions_value: Decimal
    details: dict[str, str] = field(default_factory=dict)
