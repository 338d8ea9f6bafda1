"""LIVE balances: what the exchange says the account holds, mirrored to the balances table.

In PAPER the paper ledger is the account and writes the table itself. In LIVE the exchange is
the truth: :class:`ExchangeBalances` asks it (``fetch_balance``) at start, after every fill or
exit, and whenever anything else fetches the balance through the same exchange (the
reconciler's pass), and writes the answer to the table for the mode, so the bot's equity, the
risk manager and the dashboard all see the exchange's figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from loguru import logger

from kmg_autotrader.domain import Balance, Mode

ZERO = Decimal(0)


class BalanceSource(Protocol):
    """Anything with ccxt's ``fetch_balance`` (a :class:`CcxtExchange`)."""

    async def fetch_balance(self) -> dict[str, Any]:
        """ccxt balance structure."""
        ...


class BalanceTable(Protocol):
    """The balances repository (one row per mode and currency)."""

    def all(self, mode: Mode | str) -> list[Balance]:
        """Every balance of ``mode``."""
        ...

    def set_many(self, mode: Mode | str, balances: dict[str, tuple[Decimal, Decimal]]) -> None:
        """Set ``{currency: (free, used)}`` in one transaction."""
        ...


def _decimal(value: Any) -> Decimal:
    if value is None:
        return ZERO
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ZERO
    return number if number.is_finite() else ZERO


def parse_ccxt_balance(raw: Mapping[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """``{currency: (free, used)}`` of every currency with a non-zero total in a ccxt balance."""
    free = raw.get("free") or {}
    used = raw.get("used") or {}
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for currency in sorted(set(free) | set(used)):
        pair = (_decimal(free.get(currency)), _decimal(used.get(currency)))
        if pair[0] + pair[1] != 0:
            out[str(currency)] = pair
    return out


class ExchangeBalances:
    """The exchange's balances for one mode, cached and written to the table on every answer.

    If the exchange has ``balance_listeners`` (:class:`CcxtExchange`), every balance fetched
    through it by anyone is recorded, so the reconciler's passes keep the table current too.
    """

    def __init__(
        self, exchange: BalanceSource, table: BalanceTable, mode: Mode = Mode.LIVE
    ) -> None:
        self.exchange = exchange
        self.table = table
        self.mode = mode
        self.fetched = 0  # answers recorded (for tests and the health view)
        self._current: list[Balance] | None = None
        listeners: list[Callable[[dict[str, Any]], object]] | None = getattr(
            exchange, "balance_listeners", None
        )
        self._listening = listeners is not None
        if listeners is not None:
            listeners.append(self.record)

    async def refresh(self) -> list[Balance]:
        """Ask the exchange now (errors propagate: the caller decides what a failure means)."""
        raw = await self.exchange.fetch_balance()
        if not self._listening:
            self.record(raw)
        return self.current()

    def record(self, raw: Mapping[str, Any]) -> list[Balance]:
        """Take a ccxt balance as the account's state: cache it and write it to the table.

        Currencies the table holds that the exchange no longer shows are set to zero, so
        the dashboard never keeps a stale holding.
        """
        parsed = parse_ccxt_balance(raw)
        stale = {b.currency for b in self.table.all(self.mode)} - set(parsed)
        rows = {**{currency: (ZERO, ZERO) for currency in stale}, **parsed}
        if rows:
            self.table.set_many(self.mode, rows)
        self._current = [
            Balance(self.mode, currency, free, used) for currency, (free, used) in parsed.items()
        ]
        self.fetched += 1
        logger.debug(
            "{} balances from the exchange: {}",
            self.mode.value,
            ", ".join(f"{b.currency} {b.total}" for b in self._current) or "none",
        )
        return list(self._current)

    def current(self) -> list[Balance]:
        """The last answer (the table's rows before the first one, e.g. right after a restart)."""
        if self._current is None:
            return [b for b in self.table.all(self.mode) if b.total != 0]
        return list(self._current)
