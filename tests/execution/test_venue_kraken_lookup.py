"""Issue 18 item 13: Kraken's order look-up by client id must find an order whatever its age.
The look-up scanned the first page of ClosedOrders (50 orders, newest first), so an order with
50 newer closed orders was "not found" (and a not-found order is one the bot may call lost or
re-send). It now asks OpenOrders / ClosedOrders for the ``cl_ord_id`` itself. Against the
Kraken venue through the bot's real order path."""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import OrderStatus
from kmg_autotrader.execution.reconcile import Reconciler

from .venue_path import KEY, SYMBOL, venue_path


async def test_an_order_older_than_the_first_page_of_closed_orders_is_found() -> None:
    async with venue_path("kraken") as path:
        report = await path.manager.execute(path.intent())
        (order,) = report.orders
        coid = order.client_order_id
        account = path.venue.accounts.get(KEY)
        assert account is not None
        book = path.venue.market.order_book(SYMBOL, path.clock.now_ms())
        for n in range(55):  # newer closed orders (placed by hand, say)
            path.venue.accounts.place(
                account,
                SYMBOL,
                "market",
                "buy",
                Decimal("0.001"),
                client_order_id=f"hand{n}",
                book=book,
            )
        found = await path.manager.orders.lookup(coid, SYMBOL)  # before the fix: None
        assert found is not None and found["clientOrderId"] == coid
        assert found["status"] == "closed"
        # the reconciler (which calls an order lost after repeated "not found") settles it
        for _ in range(3):
            await Reconciler(path.manager, lost_after=1, lost_window_ms=0).run()
        stored = path.store.get_order(coid)
        assert stored is not None and stored.status is OrderStatus.FILLED
        assert sum(f.amount for f in path.store.fills_for_order(coid)) == Decimal("0.002")
        # one filtered question per list, no paging
        assert path.venue.requests["POST /0/private/ClosedOrders"] <= 5
