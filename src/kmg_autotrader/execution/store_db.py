"""The database :class:`~kmg_autotrader.execution.ports.TradingStore`: the repositories of one
mode, plus read-only look-ups the repositories do not offer (orders by intent, by position, which
exchange order ids are ours).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from kmg_autotrader.domain import Fill, Mode, Order, Position
from kmg_autotrader.storage.models import OrderRow, PositionRow
from kmg_autotrader.storage.repositories import Repositories, _order_from_row


class RepositoryStore:
    """Trading records of one mode in the database (writes go through the repositories)."""

    def __init__(self, repos: Repositories, mode: Mode) -> None:
        self.repos = repos
        self.mode = Mode(mode)

    def add_order(self, order: Order, *, position_id: int | None = None) -> None:
        """Record an order before it is sent."""
        self.repos.orders.add(order, position_id=position_id)

    def get_order(self, client_order_id: str) -> Order | None:
        """One order by client id."""
        return self.repos.orders.get(self.mode, client_order_id)

    def update_order(self, client_order_id: str, **fields: Any) -> None:
        """Update columns of one order."""
        self.repos.orders.update(self.mode, client_order_id, **fields)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders that may still fill."""
        return self.repos.orders.open_orders(self.mode, symbol)

    def _orders_where(self, *conditions: Any) -> list[Order]:
        query = (
            select(OrderRow)
            .where(OrderRow.mode == self.mode.value, *conditions)
            .order_by(OrderRow.id)
        )
        with self.repos.db.session() as session:
            return [_order_from_row(r) for r in session.scalars(query)]

    def orders_for_intent(self, intent_id: str) -> list[Order]:
        """Every order of one intent, oldest first."""
        return self._orders_where(OrderRow.intent_id == intent_id)

    def orders_for_position(self, position_id: int) -> list[Order]:
        """Every order linked to one position, oldest first."""
        return self._orders_where(OrderRow.position_id == position_id)

    def order_position_id(self, client_order_id: str) -> int | None:
        """The position of an order."""
        return self.repos.orders.position_id(self.mode, client_order_id)

    def known_exchange_ids(self, exchange_order_ids: Iterable[str]) -> set[str]:
        """Which of these exchange order ids are ids of our orders (one query)."""
        wanted = sorted(set(exchange_order_ids))
        if not wanted:
            return set()
        query = select(OrderRow.exchange_order_id).where(
            OrderRow.mode == self.mode.value, OrderRow.exchange_order_id.in_(wanted)
        )
        with self.repos.db.session() as session:
            return {str(value) for value in session.scalars(query) if value is not None}

    def add_fill(self, fill: Fill) -> bool:
        """Store a fill once."""
        return self.repos.fills.add(fill)

    def fills_for_order(self, client_order_id: str) -> list[Fill]:
        """Fills of one order."""
        return self.repos.fills.for_order(self.mode, client_order_id)

    def open_position(self, position: Position) -> int:
        """Store a new position."""
        return self.repos.positions.open(position)

    def get_position(self, position_id: int) -> Position | None:
        """One position."""
        return self.repos.positions.get(self.mode, position_id)

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        """Positions not closed yet."""
        return self.repos.positions.open_positions(self.mode, symbol)

    def update_position(self, position_id: int, **fields: Any) -> None:
        """Update columns of one position."""
        self.repos.positions.update(self.mode, position_id, **fields)

    def claim_exit(self, position_id: int) -> bool:
        """Atomic compare-and-set (a conditional UPDATE on SQLite and PostgreSQL)."""
        return self.repos.positions.claim_exit(self.mode, position_id)

    def release_exit(self, position_id: int) -> None:
        """Give up an exit claim."""
        self.repos.positions.release_exit(self.mode, position_id)

    def is_exiting(self, position_id: int) -> bool:
        """True while an exit claim is held (read-only look-up of the ``exiting`` column)."""
        query = select(PositionRow.exiting).where(
            PositionRow.mode == self.mode.value, PositionRow.id == position_id
        )
        with self.repos.db.session() as session:
            return bool(session.scalar(query))

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
        """Mark a position closed."""
        self.repos.positions.close(
            self.mode,
            position_id,
            closed_at=closed_at,
            exit_price=exit_price,
            exit_reason=exit_reason,
            realized_pnl=realized_pnl,
            fees_paid=fees_paid,
            amount=amount,
        )

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an event in the events table."""
        self.repos.events.add(
            self.mode, kind, message, level=level, source="execution", details=details
        )
