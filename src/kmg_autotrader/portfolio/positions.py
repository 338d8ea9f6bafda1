"""Position figures computed from fills (average-cost method), and ATR-based exit levels.

A position's amount is *defined* as the sum of its fills (buys minus sells, minus fees paid in
the base currency), so recomputing it is idempotent and reconciliation can check it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from operator import attrgetter
from typing import NamedTuple

from kmg_autotrader.domain import Fill, Side

ZERO = Decimal(0)
_FILL_ORDER = attrgetter("timestamp", "trade_id")  # time, then trade id


class PositionFigures(NamedTuple):
    """Amount, average entry and PnL of a position after a sequence of fills.

    ``realized_pnl`` is net of every fee paid so far (entry and exit); ``gross_pnl`` excludes
    fees. A fee paid in a third currency (e.g. BNB) counts at the value its fill recorded in
    the quote currency (``Fill.fee_quote``, converted at the fill's time); one with no recorded
    value is listed in ``unvalued_fees`` (currency → amount) rather than silently dropped.

    A named tuple, not a frozen dataclass: every position refresh makes one, and a frozen
    dataclass stores each field through ``object.__setattr__`` (several times a tuple's cost).
    """

    amount: Decimal
    entry_price: Decimal
    bought: Decimal
    sold: Decimal
    sold_value: Decimal
    fees_paid: Decimal
    gross_pnl: Decimal
    unvalued_fees: dict[str, Decimal] | None = None

    @property
    def realized_pnl(self) -> Decimal:
        """Gross PnL minus fees."""
        return self.gross_pnl - self.fees_paid

    @property
    def exit_price(self) -> Decimal | None:
        """Average sell price, None before any sell."""
        return self.sold_value / self.sold if self.sold else None


def figures_from_fills(fills: Iterable[Fill], base: str, quote: str) -> PositionFigures:
    """Replay ``fills`` (any order; sorted by time here) into position figures."""
    amount = cost_basis = bought = sold = sold_value = fees = gross = ZERO
    entry = ZERO
    unvalued: dict[str, Decimal] | None = None
    if type(fills) is not list or len(fills) > 1:  # none or one fill: nothing to sort
        fills = sorted(fills, key=_FILL_ORDER)
    for fill in fills:
        if fill.fee_currency == base:
            fee_quote = fill.fee * fill.price
            base_fee = fill.fee
        elif fill.fee_currency == quote:
            fee_quote, base_fee = fill.fee, ZERO
        else:  # a third currency (BNB): its value at the fill's time, if one was recorded
            base_fee = ZERO
            fee_quote = fill.fee_quote if fill.fee_quote is not None else ZERO
            if fill.fee_quote is None and fill.fee:
                unvalued = unvalued or {}
                unvalued[fill.fee_currency] = unvalued.get(fill.fee_currency, ZERO) + fill.fee
        fees += fee_quote
        if fill.side is Side.BUY:
            amount += fill.amount - base_fee
            cost_basis += fill.amount * fill.price
            bought += fill.amount
            entry = cost_basis / bought if bought else ZERO
        else:
            gross += fill.amount * (fill.price - entry)
            amount -= fill.amount + base_fee
            sold += fill.amount
            sold_value += fill.amount * fill.price
    return PositionFigures(
        amount=amount,
        entry_price=entry,
        bought=bought,
        sold=sold,
        sold_value=sold_value,
        fees_paid=fees,
        gross_pnl=gross,
        unvalued_fees=unvalued,
    )


def atr_levels(
    entry: Decimal,
    atr: Decimal,
    *,
    stop_multiple: Decimal = Decimal(2),
    take_profit_multiple: Decimal = Decimal(3),
) -> tuple[Decimal, Decimal]:
    """Mental stop-loss and take-profit for a long entered at ``entry``: entry ∓ k·ATR."""
    if atr <= 0:
        raise ValueError("ATR must be positive")
    stop = max(entry - stop_multiple * atr, ZERO)
    return stop, entry + take_profit_multiple * atr


def trailed_stop(
    stop: Decimal | None, highest: Decimal, trailing_pct: Decimal | None
) -> Decimal | None:
    """The stop after a new high: it only ever moves up."""
    if trailing_pct is None or trailing_pct <= 0:
        return stop
    candidate = highest * (1 - trailing_pct)
    return candidate if stop is None or candidate > stop else stop
