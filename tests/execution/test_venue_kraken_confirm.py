"""Issue 17 item 6: a Kraken market order, confirmed and flattened, against the Kraken venue.

Kraken's AddOrder answers with a txid only (no status, no fill), so every market order is
confirmed by a later look-up, and ``kmg flatten --live`` returned "exits waiting for the
market": the venue had sold, our position stayed open and the sell unrecorded until the next
``kmg run``. Now the flatten waits (bounded) for its exits and records them, and an order whose
txid we know is looked up by it (QueryOrders, which lists its trade ids; then QueryTrades)
instead of by client id (OpenOrders + ClosedOrders, then QueryOrders + QueryTrades): half the
private calls, each 3 s of ccxt's Kraken throttle. Through the bot's real order path; the
venue's books are the truth.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from kmg_autotrader.execution.flatten import flatten
from kmg_autotrader.venue import Fault

from .venue_path import VenuePath, venue_path


async def _bought(path: VenuePath) -> int:
    """A filled LIVE entry (polled as the bot's loop does); its position id."""
    report = await path.manager.execute(path.intent())
    assert report.status == "working"  # Kraken's create answer carries no fill
    for _ in range(5):
        if not path.manager.working:
            break
        await path.manager.poll()
    assert not path.manager.working
    assert report.position_id is not None
    return report.position_id


def _private(path: VenuePath, before: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in (Counter(path.venue.requests) - before).items() if "/private/" in k}


def _sells_recorded(path: VenuePath, position_id: int) -> None:
    """Every sell at the venue is one of our fills, same trade, same amount."""
    books = path.books()
    sells = [t for t in books["trades"] if t["side"] == "sell"]
    venue = sorted((str(t["exchange_id"]), Decimal(t["amount"])) for t in sells)
    ours = sorted(
        (f.trade_id, f.amount)
        for o in path.store.orders_for_position(position_id)
        for f in path.store.fills_for_order(o.client_order_id)
        if f.side.value == "sell"
    )
    assert venue and ours == venue


async def test_an_order_whose_txid_we_know_is_confirmed_by_querying_it() -> None:
    async with venue_path("kraken") as path:
        report = await path.manager.execute(path.intent())
        (order,) = report.orders
        assert report.status == "working" and order.exchange_order_id
        before = Counter(path.venue.requests)
        await path.manager.poll()
        assert not path.manager.working
        # before: OpenOrders, ClosedOrders (by cl_ord_id), QueryOrders, QueryTrades
        assert _private(path, before) == {
            "POST /0/private/QueryOrders": 1,
            "POST /0/private/QueryTrades": 1,
        }
        stored = path.store.get_order(order.client_order_id)
        placed = path.books()["orders"][0]
        assert stored is not None and stored.status.value == "filled"
        assert stored.filled == Decimal(placed["filled"]) == Decimal("0.002")
        fills = path.store.fills_for_order(order.client_order_id)
        assert [f.trade_id for f in fills] == [
            t["exchange_id"] for t in path.books()["trades"] if t["side"] == "buy"
        ]


async def test_flatten_waits_for_the_market_exit_records_it_and_closes_the_position() -> None:
    async with venue_path("kraken") as path:
        position_id = await _bought(path)
        summary = await flatten(path.manager, wait_s=10, poll_s=0.01)
        assert summary.ok, summary.lines()
        assert summary.closed == [position_id] and summary.pending == []
        assert summary.lines()[0] == "flatten (live): 0 orders cancelled, 1 positions closed"
        assert path.store.open_positions() == []
        position = path.store.get_position(position_id)
        assert position is not None and position.exit_reason == "flatten"
        _sells_recorded(path, position_id)
        btc = path.books()["balances"].get("BTC", {"free": "0", "used": "0"})
        assert Decimal(btc["free"]) == Decimal(btc["used"]) == 0  # all of it sold


async def test_flatten_without_waiting_leaves_the_exit_to_the_bots_loop() -> None:
    # the bot's own flatten (its loop polls working orders) and the "before" of the fix
    async with venue_path("kraken") as path:
        position_id = await _bought(path)
        summary = await flatten(path.manager)
        assert summary.ok and summary.pending == [position_id] and summary.closed == []
        assert f"exits waiting for the market: positions [{position_id}]" in summary.lines()
        assert path.store.open_positions()  # until a poll records the sell
        await path.manager.poll()
        assert path.store.open_positions() == []
        _sells_recorded(path, position_id)


async def test_flatten_says_so_when_an_exit_is_not_confirmed_within_the_wait() -> None:
    async with venue_path("kraken") as path:
        position_id = await _bought(path)
        # the venue sells, then says "not found" to every look-up of that sell
        path.venue.faults.add(Fault(kind="not_found", endpoint="create_order", lookups=10_000))
        summary = await flatten(path.manager, wait_s=0.3, poll_s=0.05)
        assert not summary.ok
        assert summary.pending == [position_id] and summary.closed == []
        assert summary.waited_s >= 0.3
        assert f"not filled after 0 s: positions [{position_id}] stay open" in summary.lines()[1]
        assert [p.id for p in path.store.open_positions()] == [position_id]  # not called closed
