"""The portfolio as the risk manager sees it: equity marked to market, cash, holdings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from kmg_autotrader.domain import Balance, Position
from kmg_autotrader.domain.fast_init import fast_init

_ZERO = Decimal(0)


@fast_init  # built for every open position on every entry decision
@dataclass(frozen=True, slots=True)
class OpenPosition:
    """One open long: ``amount`` of base bought at ``entry_price``, last seen at ``last_price``."""

    symbol: str
    amount: Decimal
    entry_price: Decimal
    last_price: Decimal

    @property
    def value(self) -> Decimal:
        """Market value in quote currency at the last price."""
        return self.amount * self.last_price


@dataclass(frozen=True, slots=True)
class PortfolioState:
    """What the account holds right now.

    ``equity`` is marked to market (cash plus open positions at their last price, not only
    closed trades). ``cash`` is the *free* quote balance. ``holdings`` maps a base currency
    (``"BTC"``) to the amount held in total — including what the bot's own resting exit order
    (a take-profit) reserves, which the execution layer cancels before it sells: a sell never
    exceeds it. ``positions`` are the bot's open longs by symbol; ``last_prices`` maps symbols
    to their last price.
    """

    equity: Decimal
    cash: Decimal
    positions: Mapping[str, OpenPosition] = field(default_factory=dict)
    holdings: Mapping[str, Decimal] = field(default_factory=dict)
    last_prices: Mapping[str, Decimal] = field(default_factory=dict)
    #: Market value of every open position, in quote currency (derived from ``positions``).
    exposure: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Summed once: a decision reads it twice (its checks, then the exposure gates).
        # p.value inlined; no positions gives what the sum of nothing gives.
        positions = self.positions
        exposure = (
            sum([p.amount * p.last_price for p in positions.values()], _ZERO)
            if positions
            else _ZERO
        )
        # stored through the slot's own setter: what object.__setattr__ (the frozen
        # dataclass's idiom) ends up calling, without its look-up
        _set_exposure(self, exposure)

    @classmethod
    def from_account(
        cls,
        balances: Iterable[Balance],
        positions: Iterable[Position],
        prices: Mapping[str, Decimal],
        quote: str,
    ) -> PortfolioState:
        """Build the state from balances, open positions and last prices (``"BTC/USDT"`` keys).

        Equity counts every balance's *total* at its last price; a currency without a price is
        left out (it cannot be valued). A position without a price is valued at its entry.
        """
        # Built for every entry decision: Balance.total and Position.is_open are inlined.
        by_currency = {b.currency: b for b in balances}
        cash_balance = by_currency.get(quote)
        equity = cash_balance.free + cash_balance.used if cash_balance else Decimal(0)
        holdings: dict[str, Decimal] = {}
        for currency, balance in by_currency.items():
            if currency == quote:
                continue
            total = holdings[currency] = balance.free + balance.used
            price = prices.get(f"{currency}/{quote}")
            if price is not None:
                equity += total * price
        open_positions = {
            p.symbol: OpenPosition(
                p.symbol, p.amount, p.entry_price, prices.get(p.symbol, p.entry_price)
            )
            for p in positions
            if p.closed_at is None and p.amount > 0
        }
        # positional (equity, cash, positions, holdings, last_prices): keywords cost a dict
        return cls(
            equity,
            cash_balance.free if cash_balance else Decimal(0),
            open_positions,
            holdings,
            dict(prices),
        )


_set_exposure = PortfolioState.__dict__["exposure"].__set__
