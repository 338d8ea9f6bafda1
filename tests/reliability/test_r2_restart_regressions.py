"""Regressions R2 found: an order recorded just before ``kill -9`` (never sent) after restart.

The bot records an order (PENDING) before it sends it. Killed in between, the restarted bot
must neither poll that order as if the exchange had it (a failing look-up on every price tick)
nor keep it blocking its symbol for longer than the reconciler's proof takes, even when it is
restarted again before the reconciler's regular interval comes round.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path

from kmg_autotrader.domain import Mode, OrderStatus
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.storage.database import Database
from kmg_autotrader.storage.repositories import Repositories
from tests.execution.crash_child import build
from tests.execution.test_crash_recovery import run_child


async def test_an_order_never_sent_is_not_polled_after_restart(
    database: Database, tmp_path: Path
) -> None:
    ledger = tmp_path / "paper_exchange.json"
    run_child(database.url, ledger, "recorded")  # killed between recording and sending
    manager, engine = build(database.url, str(ledger))
    asked: list[str] = []
    lookup = manager.exchange.fetch_order_by_client_id

    async def counted(client_order_id: str, symbol: str) -> object:
        asked.append(client_order_id)
        return await lookup(client_order_id, symbol)

    manager.exchange.fetch_order_by_client_id = counted  # type: ignore[method-assign]
    assert manager.resume() == 0 and manager.working == {}
    for _ in range(20):  # price ticks
        assert await manager.poll() == []
    assert asked == [] and engine.orders == {}


async def test_an_order_sent_before_the_kill_is_adopted_then_watched(
    database: Database, tmp_path: Path
) -> None:
    ledger = tmp_path / "paper_exchange.json"
    run_child(database.url, ledger, "accepted")  # killed after the exchange filled it
    manager, engine = build(database.url, str(ledger))
    report = await Reconciler(manager, symbols=("BTC/USDT",)).run()  # before resume()
    assert report.adopted_fills == 1
    assert manager.resume() == 0  # filled: nothing left to watch
    (position,) = Repositories(database).positions.open_positions(Mode.PAPER)
    assert position.amount == Decimal("0.1") and position.extra["state"] == "open"
    assert len(engine.orders) == 1


async def test_a_never_sent_order_is_proven_lost_within_a_short_life(
    database: Database, tmp_path: Path
) -> None:
    """The proof takes several passes; they must come soon, not at the 3-minute interval,
    or a bot restarted every few minutes never frees the symbol."""
    ledger = tmp_path / "paper_exchange.json"
    run_child(database.url, ledger, "recorded")
    manager, engine = build(database.url, str(ledger))
    repos = Repositories(database)
    reconciler = Reconciler(manager, symbols=("BTC/USDT",))
    clock = manager.clock

    async def time_passes() -> None:  # the exchange's clock runs on (a window may be asked)
        while True:
            clock.set(clock.now_ms() + 60_000)  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(time_passes())
    loop = asyncio.create_task(reconciler.run_forever(interval_s=180.0, retry_s=0.05))
    try:
        for _ in range(200):
            (order,) = repos.orders.recent(Mode.PAPER)
            if order.status is OrderStatus.LOST:
                break
            await asyncio.sleep(0.02)
    finally:
        for task in (loop, ticking):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert order.status is OrderStatus.LOST, order
    assert repos.positions.open_positions(Mode.PAPER) == []  # the symbol is free again
    assert engine.orders == {}  # nothing was sent, nothing re-sent
