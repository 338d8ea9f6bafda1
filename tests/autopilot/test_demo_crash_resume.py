"""``kill -9`` of ``kmg demo`` at the two moments Issue 20 found fatal, then ``kmg demo
--resume``: the resumed run recovers what the dead one left half-done and trades exactly as an
uninterrupted run does.

* item 2: the paper exchange filled the first take-profit exit (its book on disk says so), the
  database still holds the order open. Before the fix the demo never reconciled and its resume
  skipped take-profit orders: the fill was lost, the position stayed claimed, cash was off and
  nothing traded for the rest of the replay.
* item 4: the risk manager approved an entry (stored as a pending entry), the process died before
  its order. Before the fix the resumed run rejected the symbol as ``ALREADY_IN_POSITION`` for
  ``pending_entry_minutes`` although no position existed, and lost the trade.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from .demo_crash_child import CRASH_CODE

CHILD = Path(__file__).with_name("demo_crash_child.py")
ROOT = CHILD.parents[2]
# the second trade of the packaged set closes at its take-profit near candle 3,663; two more
# round trips follow before candle 4,100
LIMIT = 4100
START_USDT = Decimal(10_000)


def _env(data: Path) -> dict[str, str]:
    path = os.pathsep.join((str(ROOT / "src"), str(ROOT)))  # this checkout's source first
    return {**os.environ, "DATA_DIR": str(data), "COLUMNS": "160", "PYTHONPATH": path}


def _demo(data: Path, *args: str) -> None:
    """``kmg demo`` to the end of the replay (``args``: e.g. ``--resume``)."""
    demo = [sys.executable, "-m", "kmg_autotrader", "demo", "--no-web", "--speed", "0"]
    proc = subprocess.run(
        [*demo, "--limit", str(LIMIT), *args],
        env=_env(data),
        cwd=data.parent,  # no .env of the checkout
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def _crash(data: Path, stage: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(CHILD), stage, str(data), str(LIMIT)],
        env=_env(data),
        cwd=data.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == CRASH_CODE, proc.stderr[-3000:]


def _rows(data: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data / "demo.sqlite") as connection:
        return connection.execute(sql).fetchall()


def _orders(data: Path) -> list[tuple[object, ...]]:
    return _rows(data, "SELECT side, purpose, status, created_at FROM orders ORDER BY id")


def _book(data: Path) -> dict[str, Any]:
    """The paper exchange's book as the demo left it on disk."""
    book: dict[str, Any] = json.loads((data / "demo_paper_exchange.json").read_text())
    return book


def _db_cash(data: Path) -> Decimal:
    """USDT the database's fills say the account holds."""
    cash = START_USDT
    for side, amount, price, fee, currency in _rows(
        data, "SELECT side, amount, price, fee, fee_currency FROM fills"
    ):
        value = Decimal(str(amount)) * Decimal(str(price))
        cash += -value if side == "buy" else value
        if currency == "USDT":
            cash -= Decimal(str(fee))
    return cash


def _book_cash(data: Path) -> Decimal:
    free, used = _book(data)["balances"]["USDT"]
    return Decimal(free) + Decimal(used)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the same replay."""
    data = tmp_path_factory.mktemp("reference") / "data"
    _demo(data)
    return data


def test_kill_after_the_paper_fill_before_the_database_then_resume(
    tmp_path: Path, reference: Path
) -> None:
    data = tmp_path / "data"
    _crash(data, "exit_fill")
    (tp_id, tp_coid, status) = _rows(
        data,
        "SELECT id, client_order_id, status FROM orders WHERE purpose = 'take_profit'",
    )[0]
    assert status == "open"  # the database never heard of the fill...
    (booked,) = [o for o in _book(data)["orders"] if o["client_order_id"] == tp_coid]
    assert booked["status"] == "closed"  # ...the paper book did
    assert _db_cash(data) != _book_cash(data)

    _demo(data, "--resume")

    (status, filled) = _rows(data, f"SELECT status, filled FROM orders WHERE id = {tp_id}")[0]
    assert status == "filled" and Decimal(str(filled)) == Decimal(booked["filled"])
    fills = _rows(data, f"SELECT amount FROM fills WHERE client_order_id = '{tp_coid}'")
    assert sum(Decimal(str(a)) for (a,) in fills) == Decimal(booked["filled"])
    assert _db_cash(data) == _book_cash(data)  # cash as the paper book holds it
    assert _rows(data, "SELECT COUNT(*) FROM positions WHERE closed_at IS NULL") == [(0,)]
    # trading went on: every order of the uninterrupted run, none more
    assert _orders(data) == _orders(reference)
    assert _book_cash(data) == _book_cash(reference)


def test_kill_between_approval_and_order_then_resume(tmp_path: Path, reference: Path) -> None:
    data = tmp_path / "data"
    _crash(data, "approved:2")
    (day,) = _rows(data, "SELECT value FROM risk_state WHERE key = 'risk.day'")[0]
    assert "BTC/USDT" in json.loads(str(day))["pending_entries"]  # the approval was stored
    assert len(_orders(data)) == 2  # the first round trip; the second entry never went out

    _demo(data, "--resume")

    rejected = _rows(
        data, "SELECT COUNT(*) FROM risk_decisions WHERE reason_code = 'ALREADY_IN_POSITION'"
    )
    assert rejected == [(0,)]
    assert _orders(data) == _orders(reference)  # the same trades as an uninterrupted run
    assert _book_cash(data) == _book_cash(reference)
