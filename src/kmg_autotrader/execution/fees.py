"""Fee schedules per exchange, the slippage model and order-book walking for simulated fills."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

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
