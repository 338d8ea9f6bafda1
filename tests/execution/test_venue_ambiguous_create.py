"""Issue 18 item 4: an order whose create answer was lost is never sent twice on the strength of
one "not found" (Binance and Kraken keep a client order id unique among *open* orders only, so a
re-sent market order that had filled trades again). Against the local venue, through the bot's
real order path; the venue's books are the truth."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.domain import OrderStatus
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.venue import Fault

from .venue_path import SYMBOL, VenuePath, venue_path

EXCHANGES = ("binance", "kraken")
CREATE = {"binance": "POST /api/v3/order", "kraken": "POST /0/private/AddOrder"}


def lose_answer_and_hide(path: VenuePath, lookups: int) -> None:
    """The next create is placed (and fills), its answer is lost, and its first ``lookups``
    look-ups answer "not found"."""
    path.venue.faults.add(Fault(kind="not_found", endpoint="create_order", lookups=lookups))
    path.venue.faults.add(Fault(kind="timeout_after_accept", endpoint="create_order"))


async def settled(path: VenuePath) -> None:
    """Poll working orders as the bot's loop does (Kraken's create answer has no status)."""
    for _ in range(5):
        if not path.manager.working:
            return
        await path.manager.poll()
    raise AssertionError(f"still working: {path.manager.working}")


def assert_books_match(path: VenuePath, coid: str) -> None:
    """One venue order for ``coid``, filled as we recorded it, its trades our fills."""
    books = path.books()
    placed = [o for o in books["orders"] if o["client_order_id"] == coid]
    assert len(placed) == 1, placed
    trades = sorted(
        Decimal(t["amount"]) for t in books["trades"] if t["order_id"] == placed[0]["id"]
    )
    fills = sorted(f.amount for f in path.store.fills_for_order(coid))
    assert fills == trades and sum(fills) == Decimal(placed[0]["filled"])
    order = path.store.get_order(coid)
    assert order is not None and order.filled == Decimal(placed[0]["filled"])


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_filled_market_order_not_found_after_a_timeout_is_not_sent_twice(
    exchange: str,
) -> None:
    async with venue_path(exchange) as path:
        lose_answer_and_hide(path, lookups=2)  # seen on the third look-up
        report = await path.manager.execute(path.intent())
        assert len(path.books()["orders"]) == 1  # before the fix: 2, the re-send traded again
        assert path.venue.requests[CREATE[exchange]] == 1
        assert report.status == "filled", report.message
        (order,) = report.orders
        assert order.status is OrderStatus.FILLED
        assert_books_match(path, order.client_order_id)


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_not_found_longer_than_the_proof_stays_unresolved_then_is_adopted(
    exchange: str,
) -> None:
    async with venue_path(exchange) as path:
        lose_answer_and_hide(path, lookups=50)
        report = await path.manager.execute(path.intent())
        # not found every time, but the account's trades show a buy that is none of ours
        assert report.status == "unresolved", report.message
        assert "belong to no order we know" in report.message
        assert len(path.books()["orders"]) == 1 and path.venue.requests[CREATE[exchange]] == 1
        (coid,) = [o.client_order_id for o in path.store.open_orders()]
        reconciler = Reconciler(path.manager, symbols=(SYMBOL,), lost_after=2, lost_window_ms=0)
        for _ in range(3):  # still hidden: never marked lost while a trade may be it
            hidden = await reconciler.run()
            assert not hidden.lost and coid in hidden.not_found
        path.venue.faults.clear()  # the exchange shows it at last
        resolved = await reconciler.run()
        assert resolved.resolved == [coid] and resolved.adopted_fills >= 1
        order = path.store.get_order(coid)
        assert order is not None and order.status is OrderStatus.FILLED
        assert_books_match(path, coid)
        assert len(path.books()["orders"]) == 1


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_create_refused_with_a_5xx_is_proven_absent_then_sent_once_more(
    exchange: str,
) -> None:
    async with venue_path(exchange) as path:
        path.venue.faults.add(Fault(kind="server_error", endpoint="create_order", status=503))
        report = await path.manager.execute(path.intent())
        assert report.status in ("filled", "working"), report.message
        await settled(path)
        assert path.venue.requests[CREATE[exchange]] == 2  # the refused one, the re-send
        (order,) = report.orders
        assert path.store.get_order(order.client_order_id).status is OrderStatus.FILLED  # type: ignore[union-attr]
        assert_books_match(path, order.client_order_id)
        assert len(path.books()["orders"]) == 1


async def test_reconciler_calls_an_order_lost_only_after_answers_spread_over_its_window() -> None:
    async with venue_path("binance") as path:
        path.venue.faults.add(
            Fault(kind="server_error", endpoint="create_order", status=502, times=-1)
        )
        report = await path.manager.execute(path.intent())
        assert report.status == "unresolved"  # every attempt refused
        path.venue.faults.clear()
        assert path.books()["orders"] == []
        (coid,) = [o.client_order_id for o in path.store.open_orders()]
        reconciler = Reconciler(path.manager, lost_after=2, lost_window_ms=60_000)
        for _ in range(3):  # quick passes (each unresolved order requests one) prove nothing
            assert not (await reconciler.run()).lost
        await path.venue.advance(ms=60_000)
        assert (await reconciler.run()).lost == [coid]
        order = path.store.get_order(coid)
        assert order is not None and order.status is OrderStatus.LOST
        assert path.books()["orders"] == []  # and nothing was re-sent
