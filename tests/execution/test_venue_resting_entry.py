"""Issue 18 item 2: a limit entry whose create answer was lost (UNRESOLVED) and that turns out
to be resting, partly filled, is timed out like any entry: the rest is cancelled and the filled
part becomes an open position with its stop (and its take-profit), which the tracker watches.
Before the fix nothing watched it: its position stayed "opening", skipped by the tracker, with
no stop. And the start-up recovery reconciles before it resumes. Against the local venue,
through real ccxt classes."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from kmg_autotrader.domain import ExecutionMode, Mode, OrderIntent, OrderStatus, Side
from kmg_autotrader.execution.book import OPEN
from kmg_autotrader.execution.manager import TP_ORDER, ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.execution.recovery import recover
from kmg_autotrader.execution.tracker import PositionTracker
from kmg_autotrader.venue import Fault

from .venue_path import FAST, SYMBOL, VenuePath, venue_path

TIMEOUT_MS = 30_000
CONFIG = ExecutionConfig(
    execution_mode=ExecutionMode.LIMIT_BRACKET, retry=FAST, limit_timeout_ms=TIMEOUT_MS
)


def _intent(path: VenuePath) -> OrderIntent:
    price = path.venue.market.last_price(SYMBOL, path.clock.now_ms())
    return OrderIntent(
        mode=Mode.LIVE,
        symbol=SYMBOL,
        side=Side.BUY,
        amount=Decimal("0.004"),
        price=price,
        stop_loss=(price * Decimal("0.9")).quantize(Decimal("0.01")),
        take_profit=(price * Decimal("1.2")).quantize(Decimal("0.01")),
        created_at=path.clock.now_ms(),
        signal_id=1,
    )


async def _unresolved_resting_entry(path: VenuePath) -> str:
    """A post-only limit entry rests on the venue; its create answer is lost and every
    look-up fails, so it is UNRESOLVED here. Then half of it fills."""
    path.venue.faults.add(Fault(kind="timeout_after_accept", endpoint="create_order"))
    path.venue.faults.add(Fault(kind="server_error", endpoint="fetch_order", times=-1))
    path.venue.faults.add(Fault(kind="server_error", endpoint="open_orders", times=-1))
    report = await path.manager.execute(_intent(path))
    assert report.status == "unresolved", report.message
    path.venue.faults.clear()
    (order,) = path.store.open_orders()
    assert order.status is OrderStatus.UNRESOLVED
    (resting,) = [o for o in path.books()["orders"] if o["status"] == "open"]
    engine = path.venue.default_account.engine
    engine.settings = replace(engine.settings, max_fill_fraction=Decimal("0.5"))
    price = Decimal(str(resting["price"])) - 1  # the market trades through it once
    path.venue.accounts.on_price(SYMBOL, price, path.clock.now_ms())
    engine.settings = replace(engine.settings, max_fill_fraction=Decimal(1))
    (resting,) = [o for o in path.books()["orders"] if o["status"] == "open"]
    assert Decimal(str(resting["filled"])) == Decimal("0.002")
    return order.client_order_id


async def _time_out(path: VenuePath, manager: ExecutionManager) -> None:
    path.venue.clock.advance_to(path.clock.now_ms() + TIMEOUT_MS + 1)
    await manager.poll()


async def _assert_open_with_stop_and_exits(path: VenuePath, manager: ExecutionManager) -> None:
    (position,) = path.store.open_positions()
    assert position.extra["state"] == OPEN  # before the fix: "opening", forever
    assert position.amount == Decimal("0.002") and position.stop_loss is not None
    venue_orders = path.books()["orders"]
    entry = next(o for o in venue_orders if o["side"] == "buy")
    assert entry["status"] == "canceled" and Decimal(str(entry["filled"])) == Decimal("0.002")
    tp = path.store.get_order(position.extra[TP_ORDER])
    assert tp is not None and tp.amount == Decimal("0.002") and tp.status is OrderStatus.OPEN
    # the tracker watches it: the stop sells the filled part
    (signal,) = await PositionTracker(manager).on_price(SYMBOL, position.stop_loss - 1)
    assert signal.report is not None and signal.report.status == "filled", signal
    assert path.store.open_positions() == []


async def test_resolved_resting_partly_filled_entry_times_out_and_opens() -> None:
    async with venue_path(config=CONFIG) as path:
        coid = await _unresolved_resting_entry(path)
        report = await Reconciler(path.manager, symbols=(SYMBOL,)).run()
        assert report.resolved == [coid], report.lines()
        order = path.store.get_order(coid)
        assert order is not None and order.status is OrderStatus.PARTIALLY_FILLED
        assert coid in path.manager.working  # before the fix: nobody watched it
        await _time_out(path, path.manager)
        await _assert_open_with_stop_and_exits(path, path.manager)


async def test_restart_recovery_reconciles_then_resumes_the_resting_entry() -> None:
    async with venue_path(config=CONFIG) as path:
        coid = await _unresolved_resting_entry(path)
        # the process dies; a new one starts on the same store
        restarted = ExecutionManager(path.exchange, path.store, clock=path.clock, config=CONFIG)
        recovery = await recover(restarted, Reconciler(restarted, symbols=(SYMBOL,)))
        assert recovery.report.resolved == [coid] and recovery.resumed == 1
        assert coid in restarted.working
        await _time_out(path, restarted)
        await _assert_open_with_stop_and_exits(path, restarted)
