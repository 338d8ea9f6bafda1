"""Rounding to a market's steps and checking its minimums, in exact Decimal arithmetic."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from kmg_autotrader.domain import MarketInfo, Side
from kmg_autotrader.exchange.errors import InvalidOrderError

ZERO = Decimal(0)
_IS_BUY = {Side.BUY.value: True, Side.SELL.value: False}


def is_buy(side: Side | str) -> bool:
    """True for a buy, False for a sell; anything else raises ``ValueError`` as ``Side()`` does.

    A dict look-up (a :class:`Side` hashes like its text): building a ``Side`` per call was a
    measurable share of every simulated fill.
    """
    found = _IS_BUY.get(side)
    return Side(side) is Side.BUY if found is None else found


def round_step(value: Decimal, step: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    """``value`` rounded to a multiple of ``step`` (no-op when ``step`` is not positive)."""
    # a Decimal zero, not 0: comparing with an int converts it on every call
    if step <= ZERO:
        return value
    # rounding passed by position: a keyword to a C method costs a kwargs parse per call
    units = (value / step).to_integral_value(rounding)
    return (units * step).normalize() if units else ZERO


def round_amount(market: MarketInfo, amount: Decimal) -> Decimal:
    """Amount rounded DOWN to the amount step (never spend or sell more than intended)."""
    return round_step(amount, market.amount_step, ROUND_DOWN)


def round_price(market: MarketInfo, price: Decimal, side: Side | str | None = None) -> Decimal:
    """Limit price on the price step: buys round down, sells up (never worse than asked)."""
    if side is None:
        rounding = ROUND_DOWN
    else:
        rounding = ROUND_FLOOR if is_buy(side) else ROUND_CEILING
    return round_step(price, market.price_step, rounding)


def adverse_price(market: MarketInfo, price: Decimal, side: Side | str) -> Decimal:
    """A simulated fill price on the tick grid, rounded against us (buys up, sells down)."""
    rounding = ROUND_CEILING if is_buy(side) else ROUND_FLOOR
    return round_step(price, market.price_step, rounding)


def check_limits(market: MarketInfo, amount: Decimal, price: Decimal | None) -> None:
    """Raise :class:`InvalidOrderError` when an order is below the market's minimums."""
    if amount <= ZERO:
        raise InvalidOrderError(f"{market.symbol}: amount must be positive after rounding")
    if market.min_amount and amount < market.min_amount:
        raise InvalidOrderError(
            f"{market.symbol}: amount {amount} is below the minimum {market.min_amount}"
        )
    if price is not None and market.min_cost and amount * price < market.min_cost:
        raise InvalidOrderError(
            f"{market.symbol}: order value {amount * price} is below the minimum {market.min_cost}"
        )
