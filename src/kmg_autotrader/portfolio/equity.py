"""Marking an account to market."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from kmg_autotrader.domain import Balance, EquityPoint, Mode


def mark_equity(
    mode: Mode,
    timestamp: int,
    balances: Mapping[str, Balance] | list[Balance],
    prices: Mapping[str, Decimal],
    quote: str,
) -> EquityPoint:
    """Equity in ``quote``: cash plus every other currency at ``prices[f"{cur}/{quote}"]``.

    Currencies without a price are listed in ``details`` as unpriced and not counted.
    """
    items = list(balances.values()) if isinstance(balances, Mapping) else list(balances)
    cash = Decimal(0)
    held = Decimal(0)
    details: dict[str, str] = {}
    for balance in items:
        if balance.currency == quote:
            cash += balance.total
            continue
        if balance.total == 0:
            continue
        price = prices.get(f"{balance.currency}/{quote}")
        if price is None:
            details[f"unpriced:{balance.currency}"] = str(balance.total)
            continue
        held += balance.total * price
    return EquityPoint(mode, timestamp, cash + held, cash, held, details)
