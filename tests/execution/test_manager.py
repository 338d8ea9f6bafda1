"""Execution manager: MARKET_ONLY, idempotent retries, unresolved orders, exits."""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import Mode, OrderStatus, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.fees import SlippageModel
from kmg_autotrader.execution.paper import PaperExchange
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.execution.tracker import PositionTracker

from .helpers import FlakyExchange, engine, intent, manager

D = Decimal
NO_SLIP = SlippageModel(D(0), D(0))


async def test_market_entry_fills_immediately_and_opens_position() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True, slippage=SlippageModel(D(5), D(0)))
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    report = await mgr.execute(intent())
    assert report.status == "filled"
    assert report.filled == D("0.1")
    (order,) = report.orders
    assert order.status is OrderStatus.FILLED and order.client_order_id.startswith("kmgp")
    (fill,) = store.fills_for_order(order.client_order_id)
    assert fill.intended_price == D(20000)
    assert fill.slippage_bps == 5.0  # 20000 * 1.0005 = 20010
    assert fill.latency_ms == 0 and fill.fee == D("2.0010")
    (position,) = store.open_positions()
    assert position.amount == D("0.1") and position.entry_price == D(20010)
    assert position.stop_loss == D(19000) and position.extra["state"] == "open"


async def test_backtest_market_order_fills_on_next_candle_via_poll() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, slippage=NO_SLIP)
    store = MemoryStore()
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    report = await mgr.execute(intent())
    assert report.status == "working" and mgr.working_count() == 1
    clock.set(2_000)
    paper.on_bar("BTC/USDT", 2_000, 20100, 20200, 20000, 20150, 10)
    (after,) = await mgr.poll()
    assert after.status == "filled" and mgr.working_count() == 0
    (position,) = store.open_positions()
    assert position.amount == D("0.1") and position.entry_price == D(20100)


async def test_same_intent_never_executes_twice() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    mgr = manager(PaperExchange(paper), clock=clock)
    assert (await mgr.execute(intent())).status == "filled"
    again = await mgr.execute(intent())
    assert again.status == "duplicate"
    assert len(paper.my_trades("BTC/USDT")) == 1


async def test_timeout_after_accept_is_looked_up_not_resent() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    flaky = FlakyExchange(paper)
    flaky.timeouts_after_accept = 1
    store = MemoryStore()
    report = await manager(flaky, store=store, clock=clock).execute(intent())
    assert report.status == "filled"
    assert flaky.creates == 1
    assert len(paper.orders) == 1
    assert store.open_positions()[0].amount == D("0.1")


async def test_timeout_before_accept_is_resent_with_same_client_id() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    flaky = FlakyExchange(paper)
    flaky.timeouts_before_accept = 1
    report = await manager(flaky, clock=clock).execute(intent())
    assert report.status == "filled" and flaky.creates == 2
    assert len(paper.orders) == 1


async def test_unknown_outcome_becomes_unresolved_and_blocks_the_intent() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    flaky = FlakyExchange(paper)
    flaky.timeouts_after_accept = 1
    flaky.lookup_failures = 10
    store = MemoryStore()
    mgr = manager(flaky, store=store, clock=clock)
    report = await mgr.execute(intent())
    assert report.status == "unresolved"
    (order,) = store.open_orders()
    assert order.status is OrderStatus.UNRESOLVED
    assert store.events[-1]["kind"] == "order_unresolved"
    flaky.lookup_failures = 0
    blocked = await mgr.execute(intent())
    assert blocked.status == "blocked" and flaky.creates == 1


async def test_rejected_entry_closes_the_pending_position() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, usdt="10", immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    report = await manager(PaperExchange(paper), store=store, clock=clock).execute(intent())
    assert report.status == "rejected"
    assert store.open_positions() == []
    assert store.positions[1].exit_reason == "entry_failed"


async def test_mental_stop_and_take_profit_exit_at_market() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True, slippage=NO_SLIP)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    await mgr.execute(intent())
    tracker = PositionTracker(mgr)
    assert await tracker.on_price("BTC/USDT", D(20500)) == []
    paper.on_price("BTC/USDT", D(18990), 1_100)
    (signal,) = await tracker.on_price("BTC/USDT", D(18990))
    assert signal.reason == "stop_loss" and signal.report is not None
    assert signal.report.status == "filled"
    assert store.open_positions() == []
    closed = store.positions[1]
    assert closed.exit_reason == "stop_loss" and closed.amount == D("0.1")  # its closed size
    gross = D("0.1") * (D(18990) - D(20000))
    fees = D("0.1") * D(20000) * D("0.001") + D("0.1") * D(18990) * D("0.001")
    assert closed.realized_pnl == gross - fees and closed.fees_paid == fees
    # take-profit on a second position
    await mgr.execute(intent(created_at=2_000, price="18990", sl="18000", tp="19500"))
    paper.on_price("BTC/USDT", D(19600), 2_100)
    (signal,) = await tracker.on_price("BTC/USDT", D(19600))
    assert signal.reason == "take_profit"
    assert store.open_positions() == []


async def test_trailing_stop_only_moves_up() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True, slippage=NO_SLIP)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    mgr = manager(PaperExchange(paper), store=store, clock=clock, trailing_stop_pct=D("0.05"))
    await mgr.execute(intent(tp=None))
    tracker = PositionTracker(mgr)
    await tracker.on_price("BTC/USDT", D(22000))
    assert store.positions[1].stop_loss == D(20900)
    await tracker.on_price("BTC/USDT", D(21000))
    assert store.positions[1].stop_loss == D(20900)
    paper.on_price("BTC/USDT", D(20850), 1_200)
    (signal,) = await tracker.on_price("BTC/USDT", D(20850))
    assert signal.reason == "stop_loss"


async def test_claimed_position_is_not_exited_twice() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    await mgr.execute(intent())
    assert store.claim_exit(1)  # another process got there first
    report = await mgr.exit_position(1, "flatten")
    assert report.status == "skipped"
    assert all(t["side"] == "buy" for t in paper.my_trades("BTC/USDT"))


async def test_sell_intent_exits_the_position() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore(Mode.PAPER)
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    await mgr.execute(intent())
    report = await mgr.execute(intent(side=Side.SELL, created_at=5_000))
    assert report.status == "filled"
    assert store.open_positions() == []
    assert paper.balance()["total"]["BTC"] == 0


async def test_one_not_found_answer_is_no_proof_the_order_is_absent() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    flaky = FlakyExchange(paper)
    flaky.timeouts_after_accept = 1
    flaky.hidden_lookups = 2  # the exchange has it but does not show it yet
    store = MemoryStore()
    report = await manager(flaky, store=store, clock=clock).execute(intent())
    assert report.status == "filled"
    assert flaky.creates == 1 and len(paper.orders) == 1  # found on the third look-up
    assert store.open_positions()[0].amount == D("0.1")
