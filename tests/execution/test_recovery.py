"""The start-up recovery (execution.recovery.recover): reconcile, resume, release orphaned
approvals, and report to the risk manager the trades the reconciliation closed."""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.paper import PaperExchange
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.execution.recovery import recover
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.risk import InMemoryRiskStateStore, RiskManager, RiskParams, RiskParamsStore

from .helpers import engine, intent, manager

D = Decimal


async def test_a_close_the_reconciliation_recovers_is_a_closed_trade_for_risk() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock)  # market orders fill on the next price
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    first = manager(PaperExchange(paper), store=store, clock=clock)
    await first.execute(intent())
    paper.on_price("BTC/USDT", D(20000), 1_000)
    await first.poll()
    (position,) = store.open_positions()
    assert position.id is not None
    await first.exit_position(position.id, "stop_loss", intended_price=D(19000))
    clock.set(2_000)
    paper.on_price("BTC/USDT", D(19000), 2_000)  # the loss fills; the process dies unaware
    risk_state = InMemoryRiskStateStore()
    risk = RiskManager(
        mode=Mode.PAPER,
        params=RiskParamsStore(None, RiskParams()),
        state=risk_state,
        decisions=None,
        clock=clock,
    )
    restarted = manager(PaperExchange(paper), store=store, clock=clock)
    recovery = await recover(restarted, Reconciler(restarted), risk)
    assert recovery.closed == [position.id] and store.open_positions() == []
    state = risk_state.load()
    # the loss starts its cooldown and counts today, as it would have in the dead process
    assert state.last_exit_ms["BTC/USDT"] == 2_000 and state.last_loss_ms["BTC/USDT"] == 2_000
    assert state.realized_pnl_today < 0
