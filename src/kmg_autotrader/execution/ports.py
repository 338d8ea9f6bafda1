"""The interfaces execution needs: an exchange (ccxt-shaped) and a store of trading records.

Order and trade dicts follow ccxt's unified structures (``id``, ``clientOrderId``, ``status``
in ``open|closed|canceled|expired|rejected``, ``filled``, ``average``, ``fee``, ``trades``…).
Numbers may be ``float`` (ccxt) or ``Decimal`` (paper); read them with :func:`to_decimal`.
Errors are the adapter's: :class:`~kmg_autotrader.exchange.errors.TransientExchangeError`
(retry may help; :class:`AmbiguousOrderError` = a create whose outcome is unknown) and
:class:`~kmg_autotrader.exchange.errors.PermanentExchangeError` (e.g. ``OrderNotFoundError``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from kmg_autotrader.domain import Fill, MarketInfo, Mode, Order, Position

OrderDict = dict[str, Any]
TradeDict = dict[str, Any]


def to_decimal(value: Any, default: Decimal | None = None) -> Decimal | None:
    """A ccxt number (float, str, int, Decimal or None) as Decimal; ``default`` for None."""
    if isinstance(value, Decimal):  # first: the paper exchange's numbers are all Decimal
        return value
    if value is None or value == "":
        return default
    return Decimal(str(value))


def dec(value: Any) -> Decimal:
    """Like :func:`to_decimal` but None becomes 0."""
    if isinstance(value, Decimal):
        return value
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


def listed_trade_ids(raw: OrderDict) -> list[str]:
    """The trade ids an order lists (ccxt: trade dicts, or Kraken's id-only stubs of them)."""
    listed = (t.get("id") if isinstance(t, dict) else t for t in raw.get("trades") or ())
    return [str(i) for i in listed if i]


@runtime_checkable
class ExchangePort(Protocol):
    """What the execution layer needs from an exchange (paper or ccxt-backed).

    ``create_order`` ``params`` understands ``clientOrderId`` (always sent) and ``postOnly``.
    ``fetch_order_by_client_id`` raises ``OrderNotFoundError`` when the exchange does not know
    the id — that answer, and only that answer, proves an order was never accepted.
    """

    id: str

    def market(self, symbol: str) -> MarketInfo:
        """Precision, limits and fees of ``symbol``."""
        ...

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        params: dict[str, Any] | None = None,
    ) -> OrderDict:
        """Send one order (never retried inside: the caller owns idempotency)."""
        ...

    async def fetch_order(self, order_id: str, symbol: str) -> OrderDict:
        """One order by exchange id."""
        ...

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderDict:
        """One order by our client order id."""
        ...

    async def cancel_order(self, order_id: str, symbol: str) -> OrderDict:
        """Cancel one order by exchange id."""
        ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderDict]:
        """Orders still open (of one symbol, or all)."""
        ...

    async def fetch_my_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[TradeDict]:
        """Our own executions of ``symbol`` since ``since`` (epoch ms)."""
        ...

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        """``{"bids": [[price, amount], …], "asks": […]}``, best first."""
        ...

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        """ccxt ticker (``bid``, ``ask``, ``last``)."""
        ...

    async def fetch_balance(self) -> dict[str, Any]:
        """ccxt balance: ``{"free": {cur: x}, "used": {…}, "total": {…}}``."""
        ...


@runtime_checkable
class FiguresVersioned(Protocol):
    """Optional store capability: tell cheaply whether a position's figures may have changed.

    ``figures_version(position_id)`` must change whenever a fill of one of the position's
    orders is stored, an order is linked to or unlinked from it (unless it is a working order
    without fills), or one of its orders stops working (becomes terminal). Nothing else can
    change what :meth:`~.book.PositionBook.refresh` computes, so the book skips a refresh when
    the version is the one it last refreshed at. A store without it is always recomputed.
    """

    def figures_version(self, position_id: int) -> int:
        """A number that changes whenever the position's figures' inputs change."""
        ...


class TradingStore(Protocol):
    """Where orders, fills and positions of one mode are recorded.

    Two implementations: :class:`~.store_db.RepositoryStore` (the database, through the
    repositories) and :class:`~.store_memory.MemoryStore` (backtests: no I/O).
    """

    mode: Mode

    def add_order(self, order: Order, *, position_id: int | None = None) -> None:
        """Record an order before it is sent; a duplicate client id raises ``ValueError``."""
        ...

    def get_order(self, client_order_id: str) -> Order | None:
        """One order by client id."""
        ...

    def update_order(self, client_order_id: str, **fields: Any) -> None:
        """Update columns of one order (status, filled, average_price, fee, position_id…)."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders that may still fill (pending, open, partially filled, unresolved)."""
        ...

    def orders_for_intent(self, intent_id: str) -> list[Order]:
        """Every order sent for one intent, oldest first."""
        ...

    def orders_for_position(self, position_id: int) -> list[Order]:
        """Every order linked to one position, oldest first."""
        ...

    def order_position_id(self, client_order_id: str) -> int | None:
        """The position an order belongs to."""
        ...

    def known_exchange_ids(self, exchange_order_ids: Iterable[str]) -> set[str]:
        """Which of these exchange order ids are ids of orders we recorded (any status)."""
        ...

    def add_fill(self, fill: Fill) -> bool:
        """Store a fill once; False when it was already stored."""
        ...

    def fills_for_order(self, client_order_id: str) -> list[Fill]:
        """Every fill of one order, oldest first."""
        ...

    def open_position(self, position: Position) -> int:
        """Store a new open position; return its id."""
        ...

    def get_position(self, position_id: int) -> Position | None:
        """One position by id."""
        ...

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        """Positions not closed yet."""
        ...

    def update_position(self, position_id: int, **fields: Any) -> None:
        """Update columns of one position."""
        ...

    def claim_exit(self, position_id: int) -> bool:
        """Atomic compare-and-set: True for exactly one claimant of an open position."""
        ...

    def release_exit(self, position_id: int) -> None:
        """Give up an exit claim."""
        ...

    def is_exiting(self, position_id: int) -> bool:
        """True while an exit claim is held on the position."""
        ...

    def close_position(
        self,
        position_id: int,
        *,
        closed_at: int,
        exit_price: Decimal,
        exit_reason: str,
        realized_pnl: Decimal,
        fees_paid: Decimal,
        amount: Decimal | None = None,
    ) -> None:
        """Mark a position closed; ``amount`` (when given) is stored as its closed size."""
        ...

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record a system event (reconciliation finding, unresolved order, flatten…)."""
        ...
