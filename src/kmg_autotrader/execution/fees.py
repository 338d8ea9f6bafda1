"""Fee schedules per exchange, the slippage model and order-book walking for simulated fills,
and the valuation of fees paid in a third currency (BNB)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from loguru import logger

from kmg_autotrader.domain import Side
from kmg_autotrader.execution.precision import is_buy

BPS = Decimal(10_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fee as fractions of the traded value (0.001 = 0.1 %)."""

    maker: Decimal
    taker: Decimal

    def rate(self, is_maker: bool) -> Decimal:
        """The fee fraction for a maker or taker execution."""
        return self.maker if is_maker else self.taker


# Base (no-volume, no-discount) tiers: Binance spot 0.1 %/0.1 %, Kraken Pro 0.25 %/0.40 %.
DEFAULT_FEES: Mapping[str, FeeSchedule] = MappingProxyType(
    {
        "binance": FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.001")),
        "kraken": FeeSchedule(maker=Decimal("0.0025"), taker=Decimal("0.004")),
    }
)
FALLBACK_FEES = FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.001"))


def fee_schedule(exchange_id: str, override: FeeSchedule | None = None) -> FeeSchedule:
    """The fee schedule to simulate for ``exchange_id`` (an explicit override wins)."""
    if override is not None:
        return override
    return DEFAULT_FEES.get(exchange_id.lower(), FALLBACK_FEES)


@dataclass(frozen=True, slots=True)
class SlippageModel:
    """Market-order slippage in basis points: a fixed part plus a size-dependent part.

    ``bps = base_bps + impact_bps * participation`` where participation is the order's share of
    the candle's volume when known, else its notional divided by ``reference_notional`` (a
    rough depth of the book in quote currency). Participation is capped at 1.
    """

    base_bps: Decimal = Decimal(2)
    impact_bps: Decimal = Decimal(20)
    reference_notional: Decimal = Decimal(1_000_000)

    def bps(self, amount: Decimal, price: Decimal, volume: Decimal | None = None) -> Decimal:
        """Slippage in basis points for ``amount`` at ``price``."""
        if volume is not None and volume > 0:
            participation = amount / volume
        elif self.reference_notional > 0:
            participation = amount * price / self.reference_notional
        else:
            participation = _ZERO
        # min(participation, _ONE) without the call: the first of equals, as min() answers
        capped = _ONE if participation > _ONE else participation
        return self.base_bps + self.impact_bps * capped

    def fill_price(
        self, side: Side | str, amount: Decimal, price: Decimal, volume: Decimal | None = None
    ) -> Decimal:
        """The (unrounded) price a market order of ``amount`` pays against ``price``."""
        move = price * self.bps(amount, price, volume) / BPS
        buy = side is Side.BUY or (side is not Side.SELL and is_buy(side))  # see slippage_bps
        return price + move if buy else price - move


NO_SLIPPAGE = SlippageModel(base_bps=Decimal(0), impact_bps=Decimal(0))


def walk_book(
    side: Side | str,
    amount: Decimal,
    levels: Sequence[Sequence[Any]],
    *,
    overflow_bps: Decimal = Decimal(50),
) -> tuple[Decimal, bool]:
    """Volume-weighted price of taking ``amount`` from ``levels`` (asks for a buy, bids for a sell).

    Returns ``(average_price, exhausted)``. When the book is too thin the rest is priced at the
    last level moved by ``overflow_bps`` against us, and ``exhausted`` is True.
    """
    if not levels:
        raise ValueError("empty order book side")
    remaining = amount
    cost = Decimal(0)
    last = Decimal(0)
    for level in levels:
        level_price = Decimal(str(level[0]))
        level_amount = Decimal(str(level[1]))
        last = level_price
        take = min(remaining, level_amount)
        cost += take * level_price
        remaining -= take
        if remaining <= 0:
            return cost / amount, False
    factor = overflow_bps / BPS
    worst = last * (1 + factor) if is_buy(side) else last * (1 - factor)
    cost += remaining * worst
    return cost / amount, True


def slippage_bps(side: Side | str, price: Decimal, intended: Decimal | None) -> float | None:
    """How much worse than ``intended`` a fill was, in bps (negative = better)."""
    if intended is None or intended <= 0:
        return None
    # a Side answers without calling is_buy() (only text needs it)
    buy = side is Side.BUY or (side is not Side.SELL and is_buy(side))
    diff = price - intended if buy else intended - price
    return float(diff / intended * BPS)


# ---- fees paid in a third currency (BNB) ----------------------------------------------------

#: how far back a stored candle may lie from a fill and still price its fee currency
FEE_CANDLE_LOOKBACK_MS = 86_400_000

PriceAt = Callable[[str, int], Decimal | None]  # (symbol, epoch ms) -> a price, or None
Unvalued = Callable[[str, Decimal, str, str], None]  # (key, fee, fee currency, detail)


class FeeValuer:
    """Values a fee paid in a third currency (Binance's BNB discount) in the quote currency,
    at the fill's time: ``fee × price of FEE/QUOTE`` (or ``÷ QUOTE/FEE``).

    The price comes from ``last_prices`` (what the bot has seen on its feed, keyed by symbol)
    or else from ``candles`` (a look-up of the stored candle at the fill's time). With no price
    anywhere the fee is left in its own currency and ``on_unvalued`` is told once per fill (the
    bot records an event, and so an anomaly) instead of the fee silently counting as nothing.
    """

    def __init__(
        self,
        *,
        last_prices: Mapping[str, Decimal] | None = None,
        candles: PriceAt | None = None,
        on_unvalued: Unvalued | None = None,
    ) -> None:
        self.last_prices = last_prices if last_prices is not None else {}
        self.candles = candles
        self.on_unvalued = on_unvalued
        self._flagged: set[str] = set()

    def rate(self, currency: str, quote: str, at_ms: int) -> tuple[Decimal, str] | None:
        """The price of one ``currency`` in ``quote`` at ``at_ms``, and where it came from."""
        direct, inverse = f"{currency}/{quote}", f"{quote}/{currency}"
        price = self.last_prices.get(direct)
        if price is not None and price > 0:
            return price, f"last price {direct}"
        price = self.last_prices.get(inverse)
        if price is not None and price > 0:
            return _ONE / price, f"last price {inverse} (inverted)"
        if self.candles is not None:
            for symbol, invert in ((direct, False), (inverse, True)):
                try:
                    price = self.candles(symbol, at_ms)
                except Exception as exc:  # a candle look-up must not fail the fill
                    logger.warning("fee valuation: candle look-up of {} failed: {}", symbol, exc)
                    price = None
                if price is not None and price > 0:
                    return (_ONE / price if invert else price), f"candle {symbol}"
        return None

    def value(
        self, key: str, fee: Decimal, currency: str, quote: str, at_ms: int
    ) -> tuple[Decimal, Decimal] | None:
        """``(fee in quote, rate)`` for the fill ``key`` (its order and trade id), or None
        when no price is known (then flagged once)."""
        if fee == 0:
            return _ZERO, _ZERO
        found = self.rate(currency, quote, at_ms)
        if found is None:
            if key not in self._flagged:
                self._flagged.add(key)
                detail = f"no {currency}/{quote} price at {at_ms}"
                logger.warning("fee {} {} of {} not valued: {}", fee, currency, key, detail)
                if self.on_unvalued is not None:
                    self.on_unvalued(key, fee, currency, detail)
            return None
        rate, source = found
        logger.debug("fee {} {} of {} = {} {} ({})", fee, currency, key, fee * rate, quote, source)
        return fee * rate, rate


def candle_prices(store: Any, exchange: str, timeframe: str) -> PriceAt:
    """A :data:`PriceAt` over a :class:`~kmg_autotrader.storage.candle_store.CandleStore`:
    the close of the newest candle that opened at or before the time (at most
    :data:`FEE_CANDLE_LOOKBACK_MS` earlier)."""

    def price_at(symbol: str, at_ms: int) -> Decimal | None:
        frame = store.read(exchange, symbol, timeframe, at_ms - FEE_CANDLE_LOOKBACK_MS, at_ms + 1)
        if not len(frame):
            return None
        return Decimal(str(frame["close"].iloc[-1]))

    return price_at
