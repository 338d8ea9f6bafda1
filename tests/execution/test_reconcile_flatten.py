"""Reconciliation, flatten and the LIVE guard, on SQLite and PostgreSQL where storage matters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Mode, OrderStatus
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.errors import LiveTradingRefusedError
from kmg_autotrader.execution.flatten import flatten
from kmg_autotrader.execution.live_guard import ensure_live_allowed
from kmg_autotrader.execution.paper import PaperExchange
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.storage.repositories import Repositories

from .helpers import FlakyExchange, engine, intent, manager

D = Decimal


async def test_db_store_full_cycle_and_claim(repos: Repositories) -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = RepositoryStore(repos, Mode.PAPER)
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    report = await mgr.execute(intent())
    assert report.status == "filled"
    (position,) = repos.positions.open_positions(Mode.PAPER)
    assert position.amount == D("0.1") and position.stop_loss == D(19000)
    assert repos.positions.open_positions(Mode.LIVE) == []
    (order,) = report.orders
    assert order.exchange_order_id is not None
    # which exchange ids are ours (the proof of absence before a re-send asks it): this mode's
    assert store.known_exchange_ids([order.exchange_order_id, "P999"]) == {order.exchange_order_id}
    assert RepositoryStore(repos, Mode.LIVE).known_exchange_ids([order.exchange_order_id]) == set()
    assert store.known_exchange_ids([]) == set()
    assert (await mgr.execute(intent())).status == "duplicate"
    # a second process claims first: ours must not exit
    other = RepositoryStore(Repositories(repos.db), Mode.PAPER)
    assert other.claim_exit(position.id or 0)
    assert (await mgr.exit_position(position.id or 0, "stop_loss")).status == "skipped"
    other.release_exit(position.id or 0)
    done = await mgr.exit_position(position.id or 0, "stop_loss")
    assert done.status == "filled"
    assert repos.positions.open_positions(Mode.PAPER) == []
    (closed,) = repos.positions.closed_positions(Mode.PAPER)
    assert closed.exit_reason == "stop_loss" and closed.fees_paid > 0


async def test_reconcile_adopts_fills_resolves_unresolved_and_checks_invariants(
    repos: Repositories,
) -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    flaky = FlakyExchange(paper)
    flaky.timeouts_after_accept = 1
    flaky.lookup_failures = 10
    store = RepositoryStore(repos, Mode.PAPER)
    mgr = manager(flaky, store=store, clock=clock)
    assert (await mgr.execute(intent())).status == "unresolved"
    flaky.lookup_failures = 0
    report = await Reconciler(mgr, symbols=("BTC/USDT",)).run()
    assert report.resolved and report.adopted_fills == 1
    assert report.violations == [] and report.clean, report.lines()
    (order,) = repos.orders.recent(Mode.PAPER)
    assert order.status is OrderStatus.FILLED and order.filled == D("0.1")
    (position,) = repos.positions.open_positions(Mode.PAPER)
    assert position.amount == D("0.1") and position.extra["state"] == "open"
    assert flaky.creates == 1


async def test_reconcile_marks_lost_and_reports_unexpected() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    flaky = FlakyExchange(paper)
    flaky.timeouts_before_accept = 5  # never reaches the exchange
    flaky.lookup_failures = 0
    store = MemoryStore()
    mgr = manager(flaky, store=store, clock=clock)
    assert (await mgr.execute(intent())).status == "unresolved"
    # someone placed an order by hand
    paper.create_order("BTC/USDT", "limit", "buy", D("0.01"), D(15000), client_order_id="manual")
    reconciler = Reconciler(mgr, lost_after=2, lost_window_ms=0)
    first = await reconciler.run()
    assert first.not_found and not first.lost
    assert any("manual" in line for line in first.unexpected_orders)
    second = await reconciler.run()
    assert len(second.lost) == 1
    assert store.orders[second.lost[0]].status is OrderStatus.LOST
    assert store.open_positions() == []
    assert store.positions[1].exit_reason == "entry_lost"
    assert flaky.creates == 3  # no re-send by reconciliation


async def test_reconcile_reports_balance_shortfall() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    await mgr.execute(intent())
    paper.balances["BTC"][0] -= D("0.05")  # withdrawn behind our back
    report = await Reconciler(mgr).run()
    assert any("positions hold 0.1 BTC" in b for b in report.balance_findings)


async def test_flatten_cancels_everything_and_closes_positions(repos: Repositories) -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = RepositoryStore(repos, Mode.PAPER)
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    await mgr.execute(intent())
    await mgr.execute(intent(created_at=2_000, amount="0.05"))
    paper.create_order("BTC/USDT", "limit", "buy", D("0.01"), D(15000), client_order_id="manual")
    summary = await flatten(mgr)
    assert summary.ok, summary.lines()
    assert len(summary.closed) == 2 and summary.canceled_unknown
    assert repos.positions.open_positions(Mode.PAPER) == []
    assert paper.open_orders() == []
    assert paper.balance()["total"]["BTC"] == 0
    assert "2 positions closed" in summary.lines()[0]
    again = await flatten(mgr)
    assert again.closed == [] and again.ok


def test_live_guard() -> None:
    paper = load_settings(env_file=None)
    ensure_live_allowed(paper, live_flag=False)
    with pytest.raises(LiveTradingRefusedError, match="TRADING_MODE is not 'live'"):
        ensure_live_allowed(paper, live_flag=True)
    live_no_keys = load_settings(env_file=None, trading_mode="live")
    with pytest.raises(LiveTradingRefusedError) as err:
        ensure_live_allowed(live_no_keys, live_flag=False)
    assert "BINANCE_API_KEY" in str(err.value) and "--live" in str(err.value)
    live = load_settings(
        env_file=None, trading_mode="live", binance_api_key="k" * 16, binance_secret_key="s" * 16
    )
    with pytest.raises(LiveTradingRefusedError, match="--live"):
        ensure_live_allowed(live, live_flag=False)
    ensure_live_allowed(live, live_flag=True)
    try:
        ensure_live_allowed(live_no_keys, live_flag=True)
    except LiveTradingRefusedError as exc:
        assert "s" * 16 not in str(exc)


async def test_stale_exit_claim_is_released_after_a_crash(repos: Repositories) -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = RepositoryStore(repos, Mode.PAPER)
    mgr = manager(PaperExchange(paper), store=store, clock=clock)
    await mgr.execute(intent())
    (position,) = store.open_positions()
    pid = position.id or 0
    assert store.claim_exit(pid)  # a process claimed the exit, then died before sending
    extra = dict(position.extra, exit_claimed_at="1000")
    store.update_position(pid, extra=extra)
    reconciler = Reconciler(mgr, stale_claim_ms=60_000)
    await reconciler.run()
    assert store.is_exiting(pid)  # too fresh to call stale
    clock.set(100_000)
    report = await reconciler.run()
    assert any("stale exit claim" in n for n in report.notes)
    assert not store.is_exiting(pid)
    assert (await mgr.exit_position(pid, "stop_loss")).status == "filled"


async def test_resume_watches_a_resting_entry_after_restart() -> None:
    from kmg_autotrader.domain import ExecutionMode

    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True, volume_participation=None)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    first = manager(
        PaperExchange(paper),
        store=store,
        clock=clock,
        execution_mode=ExecutionMode.LIMIT_BRACKET,
        limit_timeout_ms=1_000,
    )
    assert (await first.execute(intent())).status == "working"
    # restart: a new manager over the same store and exchange knows nothing in memory
    second = manager(
        PaperExchange(paper),
        store=store,
        clock=clock,
        execution_mode=ExecutionMode.LIMIT_BRACKET,
        limit_timeout_ms=1_000,
    )
    assert second.resume() == 1
    clock.set(5_000)
    (report,) = await second.poll()
    assert report.status == "rejected"  # nothing filled: cancelled, entry given up
    assert store.open_positions() == [] and paper.open_orders() == []


async def test_unresolved_order_wakes_the_reconciler() -> None:
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock, immediate_market=True)
    paper.on_price("BTC/USDT", D(20000), 900)
    flaky = FlakyExchange(paper)
    flaky.timeouts_after_accept = 1
    flaky.lookup_failures = 10
    mgr = manager(flaky, clock=clock)
    reconciler = Reconciler(mgr)
    assert not reconciler._wake.is_set()
    await mgr.execute(intent())
    assert reconciler._wake.is_set()


def test_concurrent_exit_claims_have_one_winner(repos: Repositories) -> None:
    import threading

    from kmg_autotrader.domain import Position

    store = RepositoryStore(repos, Mode.PAPER)
    pid = store.open_position(Position(Mode.PAPER, "BTC/USDT", D("0.1"), D(20000), opened_at=1))
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def claim() -> None:
        own = RepositoryStore(Repositories(repos.db), Mode.PAPER)  # e.g. bot and kmg flatten
        barrier.wait()
        results.append(own.claim_exit(pid))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * 7 + [True]


async def test_resume_watches_an_exit_of_every_purpose_after_restart() -> None:
    """Issue 20 item 2: a take-profit exit at market (MARKET_ONLY: the mental take-profit) that
    was still waiting for its fill when the process died is watched again, like any exit.
    Before the fix resume() skipped every order whose purpose was take_profit: its fill was
    never recorded and its position stayed claimed."""
    clock = SimulatedClock(1_000)
    paper = engine(clock=clock)  # market orders fill on the next price (as in the demo)
    paper.on_price("BTC/USDT", D(20000), 900)
    store = MemoryStore()
    first = manager(PaperExchange(paper), store=store, clock=clock)
    await first.execute(intent())
    paper.on_price("BTC/USDT", D(20000), 1_000)
    await first.poll()
    (position,) = store.open_positions()
    assert position.id is not None and position.amount == D("0.1")
    exit_ = await first.exit_position(position.id, "take_profit", intended_price=D(22000))
    assert exit_.status == "working"
    paper.on_price("BTC/USDT", D(22000), 2_000)  # fills in the book; then the process dies
    second = manager(PaperExchange(paper), store=store, clock=clock)
    assert second.resume() == 1
    (report,) = await second.poll()
    assert report.status == "filled"
    assert store.open_positions() == []
