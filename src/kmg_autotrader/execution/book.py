"""Keeping a stored position equal to the sum of its fills."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import NamedTuple

from kmg_autotrader.domain import Fill, MarketInfo, Order, OrderStatus, Position, Side
from kmg_autotrader.execution.ports import FiguresVersioned, TradingStore
from kmg_autotrader.portfolio.positions import PositionFigures, figures_from_fills

OPENING = "opening"  # extra["state"] while the entry is still working
OPEN = "open"
#: statuses of an order that may still fill (not ``is_terminal``): a set look-up is cheaper
WORKING = frozenset(status for status in OrderStatus if not status.is_terminal)


def _any_working(orders: list[Order]) -> bool:
    """True when one of ``orders`` may still fill (a loop: cheaper than ``any()`` for a few)."""
    for order in orders:  # noqa: SIM110 - the loop is the point
        if order.status in WORKING:
            return True
    return False


class _Fresh(NamedTuple):
    """What the last full refresh of an open position computed and wrote (a named tuple:
    one is made per full refresh)."""

    version: int  # the store's figures version it was computed at
    market: MarketInfo
    figures: PositionFigures
    realized_pnl: Decimal  # the very objects written, to notice anyone rewriting them
    gross_pnl: str


class PositionBook:
    """Recomputes positions from their fills and closes them when the exit is done.

    With a store that keeps :class:`~.ports.FiguresVersioned` versions, a refresh whose inputs
    have not changed since the last one (the same fills, no order stopped working, the
    written figures untouched) is skipped: it would write the same values again.
    """

    def __init__(self, store: TradingStore) -> None:
        self.store = store
        self._versions: Callable[[int], int] | None = (
            store.figures_version if isinstance(store, FiguresVersioned) else None
        )
        self._fresh: dict[int, _Fresh] = {}  # open position id → its last full refresh

    def figures(self, position_id: int, market: MarketInfo) -> PositionFigures:
        """Figures of a position from every fill of its orders."""
        return self._figures(self.store.orders_for_position(position_id), market)

    def _figures(self, orders: list[Order], market: MarketInfo) -> PositionFigures:
        """Figures from every fill of ``orders`` (a position's, as the store lists them)."""
        fills_for_order = self.store.fills_for_order
        fills: list[Fill] = []
        for order in orders:  # a loop, not a nested comprehension (a call): one or two orders
            fills += fills_for_order(order.client_order_id)
        return figures_from_fills(fills, market.base, market.quote)

    def _known(self, position_id: int, market: MarketInfo) -> _Fresh | None:
        """The last full refresh of the position if its inputs have not changed since."""
        if self._versions is None:
            return None
        fresh = self._fresh.get(position_id)
        if (
            fresh is None
            or fresh.version != self._versions(position_id)
            or (fresh.market is not market and fresh.market != market)
        ):
            return None
        return fresh

    def refresh(self, position_id: int, market: MarketInfo, now: int) -> Position | None:
        """Write the position's amount, entry, fees and PnL from its fills; close it once an
        exit has left less than one amount step and no order of it is still working."""
        store = self.store
        position = store.get_position(position_id)
        if position is None or position.closed_at is not None:
            self._fresh.pop(position_id, None)
            return position
        version = 0
        if self._versions is not None:  # what _known() tests, inline: most refreshes stop here
            version = self._versions(position_id)
            known = self._fresh.get(position_id)
            if (
                known is not None
                and known.version == version
                and (known.market is market or known.market == market)
            ):
                fig = known.figures
                if (
                    position.amount is fig.amount
                    and position.fees_paid is fig.fees_paid
                    and position.realized_pnl is known.realized_pnl
                    and (not fig.bought or position.entry_price is fig.entry_price)
                    and position.extra.get("gross_pnl") == known.gross_pnl
                ):
                    # same fills, and no order stopped working: the last refresh did not
                    # close it, this one would not either, and would write what is there
                    return position
        orders = store.orders_for_position(position_id)
        fig = self._figures(orders, market)
        extra = dict(position.extra)
        gross_pnl = extra["gross_pnl"] = str(fig.gross_pnl)
        if fig.unvalued_fees:  # fees no price could value: not in fees_paid, so say so
            extra["unvalued_fees"] = ", ".join(f"{v} {c}" for c, v in fig.unvalued_fees.items())
        realized_pnl = fig.realized_pnl
        fields: dict[str, object] = {
            "amount": fig.amount,
            "fees_paid": fig.fees_paid,
            "realized_pnl": realized_pnl,
            "extra": extra,
        }
        if fig.bought:
            fields["entry_price"] = fig.entry_price
        store.update_position(position_id, **fields)
        # the cheap tests first: most refreshes have sold nothing (_any_working is a call)
        if fig.sold > 0 and fig.amount < market.amount_step and not _any_working(orders):
            exit_price = fig.exit_price or position.entry_price
            sells = [o.purpose for o in orders if o.side is Side.SELL and o.filled > 0]
            reason = extra.get("exit_reason") or (sells[-1] if sells else "exit")
            self._close(position_id, now, exit_price, reason, fig)
        elif self._versions is not None:
            self._fresh[position_id] = _Fresh(version, market, fig, realized_pnl, gross_pnl)
        return store.get_position(position_id)

    def finish_entry(self, position_id: int, market: MarketInfo, now: int) -> Position | None:
        """The entry is over (filled, or given up): mark the position open, or close it when
        nothing was bought. Does nothing while an entry order is still working."""
        position = self.refresh(position_id, market, now)
        if position is None or position.closed_at is not None:
            return position
        orders = self.store.orders_for_position(position_id)
        for order in orders:  # a loop, not any(): usually one or two orders
            if order.side is Side.BUY and order.status in WORKING:
                return position
        known = self._known(position_id, market)
        fig = known.figures if known is not None else self._figures(orders, market)
        if fig.bought == 0:
            lost = any(o.status is OrderStatus.LOST for o in orders)
            reason = "entry_lost" if lost else "entry_failed"
            self._close(position_id, now, position.entry_price, reason, fig)
        elif position.extra.get("state") == OPENING:
            extra = dict(position.extra)
            extra["state"] = OPEN
            self.store.update_position(position_id, extra=extra)
        return self.store.get_position(position_id)

    def _close(
        self, position_id: int, now: int, price: Decimal, reason: str, fig: PositionFigures
    ) -> None:
        self._fresh.pop(position_id, None)
        self.store.close_position(
            position_id,
            closed_at=now,
            exit_price=price,
            exit_reason=reason,
            realized_pnl=fig.realized_pnl,
            fees_paid=fig.fees_paid,
            amount=fig.sold,  # what the exits sold: the trade's size, not the 0 left held
        )
