"""LIMIT_BRACKET: re-price loop, market fallback, synthetic OCO and its races."""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import ExecutionMode, OrderStatus, OrderType
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.fees import SlippageModel
from kmg_autotrader.execution.manager import TP_ORDER
from kmg_autotrader.execution.paper import PaperExchange
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.execution.tracker import PositionTracker

from .helpers import FlakyExchange, engine, intent, manager

D = Decimal
BRACKET = ExecutionMode.LIMIT_BRACKET


def setup(**config: object) -> tuple[SimulatedClock, object, MemoryStore, object]:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True, slippage=SlippageModel(D(0), D(0)))
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    exchange = FlakyExchange(paper)
    mgr = manager(exchange, store=store, clock=clock, execution_mode=BRACKET, **config)
    return clock, paper, store, mgr


async def _bracketed(**config: object) -> tuple[SimulatedClock, object, MemoryStore, object]:
    clock, paper, store, mgr = setup(**config)
    await mgr.execute(intent())
    clock.set(2_000)
    paper.on_price("BTC/USDT", D(19990), 2_000)
    await mgr.poll()
    return clock, paper, store, mgr


async def test_limit_entry_at_best_bid_fills_as_maker_then_tp_rests() -> None:
    clock, paper, store, mgr = setup()
    report = await mgr.execute(intent())
    assert report.status == "working"
    (order,) = report.orders
    assert order.type is OrderType.LIMIT and order.price == D("19999.99")  # best bid
    clock.set(2_000)
    paper.on_price("BTC/USDT", D(19990), 2_000)
    (done,) = await mgr.poll()
    assert done.status == "filled"
    (position,) = store.open_positions()
    assert position.amount == D("0.1") and position.entry_price == D("19999.99")
    fill = store.fills_for_order(order.client_order_id)[0]
    assert fill.is_maker and fill.fee == D("0.1") * D("19999.99") * D("0.001")
    tp = store.get_order(position.extra[TP_ORDER])
    assert tp is not None and tp.price == D(22000) and tp.status is OrderStatus.OPEN


async def test_reprice_loop_then_market_fallback() -> None:
    clock, paper, store, mgr = setup(limit_timeout_ms=1_000, max_reprices=2)
    report = await mgr.execute(intent())
    first = report.orders[0].client_order_id
    for step in range(1, 4):  # the market runs away: each limit times out unfilled
        clock.set(1_000 + step * 1_500)
        paper.on_price("BTC/USDT", D(20000 + step * 100), clock.now_ms())
        await mgr.poll()
    orders = store.orders_for_intent(report.intent_id or "")
    limits = [o for o in orders if o.type is OrderType.LIMIT]
    markets = [o for o in orders if o.type is OrderType.MARKET]
    assert len(limits) == 3  # first + 2 re-prices
    assert [o.status for o in limits] == [OrderStatus.CANCELED] * 3
    assert limits[1].price > limits[0].price
    assert len(markets) == 1 and markets[0].status is OrderStatus.FILLED
    assert store.get_order(first).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    (position,) = store.open_positions()
    assert position.amount == D("0.1")


async def test_partial_fill_then_reprice_only_the_rest() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(
        clock=clock, immediate_market=True, max_fill_fraction=D("0.3"), volume_participation=None
    )
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    mgr = manager(
        PaperExchange(paper),
        store=store,
        clock=clock,
        execution_mode=BRACKET,
        limit_timeout_ms=1_000,
        max_reprices=0,
        market_fallback=True,
    )
    report = await mgr.execute(intent())
    paper.on_price("BTC/USDT", D(19990), 1_100)  # 0.03 fills
    clock.set(2_500)
    await mgr.poll()
    orders = store.orders_for_intent(report.intent_id or "")
    assert orders[0].filled == D("0.03") and orders[0].status is OrderStatus.CANCELED
    assert orders[1].type is OrderType.MARKET and orders[1].amount == D("0.07")
    (position,) = store.open_positions()
    assert position.amount == D("0.1")


async def test_fill_during_cancel_is_recorded() -> None:
    clock, _paper, store, mgr = setup(limit_timeout_ms=1_000, max_reprices=0, market_fallback=False)
    report = await mgr.execute(intent())
    mgr.exchange.fill_during_cancel = D(19000)  # fills fully just before the cancel lands
    clock.set(3_000)
    await mgr.poll()
    (order,) = store.orders_for_intent(report.intent_id or "")
    assert order.status is OrderStatus.FILLED and order.filled == D("0.1")
    assert len(store.fills_for_order(order.client_order_id)) == 1
    assert store.open_positions()[0].amount == D("0.1")


async def test_oco_take_profit_fill_closes_position_and_stop_never_fires() -> None:
    clock, paper, store, mgr = await _bracketed()
    tracker = PositionTracker(mgr)
    clock.set(3_000)
    paper.on_price("BTC/USDT", D(22001), 3_000)
    assert await tracker.on_price("BTC/USDT", D(22001)) == []
    assert store.open_positions() == []
    closed = store.positions[1]
    assert closed.exit_reason == "take_profit"
    assert closed.exit_price == D(22000)
    assert paper.balance()["total"]["BTC"] == 0


async def test_oco_both_legs_in_same_candle_never_oversells() -> None:
    clock, paper, store, mgr = await _bracketed()
    paper.settings = paper.settings.__class__(
        immediate_market=True,
        slippage=SlippageModel(D(0), D(0)),
        max_fill_fraction=D("0.5"),
        volume_participation=None,
    )
    clock.set(3_000)
    # one candle touches both the take-profit (half fills) and the stop
    paper.on_bar("BTC/USDT", 3_000, 20000, 22100, 18900, 18950)
    tracker = PositionTracker(mgr)
    (signal,) = await tracker.on_price("BTC/USDT", D(18950), low=D(18900), high=D(22100))
    assert signal.reason == "stop_loss"
    assert store.open_positions() == []
    sells = [t for t in paper.my_trades("BTC/USDT") if t["side"] == "sell"]
    assert sum(t["amount"] for t in sells) == D("0.1")
    assert paper.balance()["total"]["BTC"] == 0
    tp = store.get_order(store.positions[1].extra[TP_ORDER])
    assert tp is not None and tp.status is OrderStatus.CANCELED and tp.filled == D("0.05")


async def test_oco_stop_with_tp_filling_during_cancel() -> None:
    clock, paper, store, mgr = await _bracketed()
    mgr.exchange.fill_during_cancel = D(22001)  # the TP fills while we cancel it
    tracker = PositionTracker(mgr)
    clock.set(3_000)
    (signal,) = await tracker.on_price("BTC/USDT", D(18900))
    assert signal.report is not None
    assert store.open_positions() == []
    sells = [t for t in paper.my_trades("BTC/USDT") if t["side"] == "sell"]
    assert len(sells) == 1 and sells[0]["price"] == D(22000)  # no market sell on top
    assert paper.balance()["total"]["BTC"] == 0


async def test_limit_entry_without_funds_is_rejected_without_fallback() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, usdt="100", immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    mgr = manager(PaperExchange(paper), store=store, clock=clock, execution_mode=BRACKET)
    report = await mgr.execute(intent())
    assert report.status == "rejected"
    (order,) = store.orders.values()  # one refused limit, no re-price, no market fallback
    assert order.status is OrderStatus.REJECTED
    assert store.open_positions() == []


async def test_resume_links_a_take_profit_its_position_lost_and_leaves_it_resting() -> None:
    """A restart after the take-profit was placed but before it was linked to its position:
    resume() links it again (the tracker syncs it through the link), and does not poll it."""
    clock, paper, store, _ = await _bracketed()
    (position,) = store.open_positions()
    assert position.id is not None
    tp_coid = position.extra[TP_ORDER]
    unlinked = {k: v for k, v in position.extra.items() if k != TP_ORDER}
    store.update_position(position.id, extra=unlinked)  # the process died before linking it
    restarted = manager(
        PaperExchange(paper),  # type: ignore[arg-type]
        store=store,
        clock=clock,
        execution_mode=BRACKET,
    )
    assert restarted.resume() == 0  # a resting take-profit is the tracker's, not polled
    (position,) = store.open_positions()
    assert position.extra[TP_ORDER] == tp_coid
