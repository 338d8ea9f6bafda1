"""A crash between 'accepted by the exchange' and 'committed to our database', then a restart:
exactly one order exists and its fills are recorded. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kmg_autotrader.domain import Mode, OrderStatus
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.storage.database import Database
from kmg_autotrader.storage.repositories import Repositories

from .crash_child import CRASH_CODE, build
from .helpers import intent

CHILD = Path(__file__).with_name("crash_child.py")
D = Decimal


def run_child(url: str, ledger: Path, stage: str) -> int:
    root = CHILD.parents[2]  # this checkout's own source first (a worktree's, not the venv's)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(root / "src"), str(root)))}
    proc = subprocess.run(
        [sys.executable, str(CHILD), url, str(ledger), stage],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == CRASH_CODE, proc.stderr[-2000:]
    return proc.returncode


async def test_crash_after_accept_then_restart(database: Database, tmp_path: Path) -> None:
    ledger = tmp_path / "paper_exchange.json"
    run_child(database.url, ledger, "accepted")
    repos = Repositories(database)
    (order,) = repos.orders.recent(Mode.PAPER)
    assert order.status is OrderStatus.PENDING  # the process died before it learnt more
    assert repos.fills.recent(Mode.PAPER) == []

    manager, engine = build(database.url, str(ledger))  # the restart
    assert len(engine.orders) == 1  # the exchange did accept and fill it
    report = await Reconciler(manager, symbols=("BTC/USDT",)).run()
    assert report.adopted_fills == 1 and report.clean, report.lines()

    (order,) = repos.orders.recent(Mode.PAPER)
    assert order.status is OrderStatus.FILLED and order.filled == D("0.1")
    (fill,) = repos.fills.for_order(Mode.PAPER, order.client_order_id)
    assert fill.amount == D("0.1") and fill.fee > 0
    (position,) = repos.positions.open_positions(Mode.PAPER)
    assert position.amount == D("0.1") and position.extra["state"] == "open"

    again = await manager.execute(intent())  # the same decision arrives again
    assert again.status == "duplicate"
    assert len(engine.orders) == 1 and len(repos.orders.recent(Mode.PAPER)) == 1
    balances = {b.currency: b for b in repos.balances.all(Mode.PAPER)}
    assert balances["BTC"].free == D("0.1")


@pytest.mark.parametrize("stage", ["recorded"])
async def test_crash_before_send_is_lost_not_resent(
    database: Database, tmp_path: Path, stage: str
) -> None:
    ledger = tmp_path / "paper_exchange.json"
    run_child(database.url, ledger, stage)
    manager, engine = build(database.url, str(ledger))
    reconciler = Reconciler(manager, lost_after=2, lost_window_ms=0)
    await reconciler.run()
    report = await reconciler.run()
    assert len(report.lost) == 1
    repos = Repositories(database)
    (order,) = repos.orders.recent(Mode.PAPER)
    assert order.status is OrderStatus.LOST
    assert engine.orders == {}  # nothing was ever sent, nothing re-sent
    assert repos.positions.open_positions(Mode.PAPER) == []
