"""`kmg demo` end to end: real packaged candles through the live loop, records consistent,
SIGTERM exits cleanly, and a restart resumes where the run stopped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kmg_autotrader.autopilot.runner import run_demo
from kmg_autotrader.config import load_settings

# From the default start (candle 3,630 of the packaged set) the first BTC/USDT trade opens on the
# replay's 22nd candle; 3,100 candles hold several trades and room for a SIGTERM mid-replay.
LIMIT = 3100
TF = 300_000


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def _assert_consistent(db: Path) -> None:
    """Every fill belongs to an order whose filled amount is the sum of its fills; nothing is
    left pending or unresolved; closed positions carry their exit."""
    orders = _rows(db, "SELECT client_order_id, status, filled FROM orders")
    assert orders, "the run placed no order"
    for coid, status, filled in orders:
        assert status not in ("pending", "unresolved"), (coid, status)
        fills = _rows(db, f"SELECT amount FROM fills WHERE client_order_id = '{coid}'")
        assert sum(Decimal(str(a)) for (a,) in fills) == Decimal(str(filled)), coid
    for pid, closed_at, exit_price, reason in _rows(
        db, "SELECT id, closed_at, exit_price, exit_reason FROM positions"
    ):
        if closed_at is not None:
            assert exit_price is not None and reason, pid
    assert _rows(db, "SELECT DISTINCT mode FROM orders") == [("paper",)]


@pytest.fixture
def alert_inbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP endpoint that records what Apprise's ``json://`` plug-in posts."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_address[1]}/alerts", received
    server.shutdown()
    server.server_close()


def test_demo_replays_real_candles_and_trades(
    tmp_path: Path, alert_inbox: tuple[str, list[dict[str, Any]]]
) -> None:
    url, inbox = alert_inbox
    settings = load_settings(None, data_dir=tmp_path / "data", alert_urls=url)
    summary = asyncio.run(run_demo(settings, speed=0, limit=LIMIT))
    assert summary.candles == LIMIT
    assert summary.entries >= 1 and summary.exits >= 1
    db = tmp_path / "data" / "demo.sqlite"
    _assert_consistent(db)
    # every stage left its record
    assert _rows(db, "SELECT COUNT(*) FROM signals WHERE trace != '[]'")[0][0] > 0
    assert _rows(db, "SELECT COUNT(*) FROM risk_decisions")[0][0] >= 1
    # every entry order points at the approval it executes, and that approval at its signal
    linked = _rows(
        db,
        "SELECT o.risk_decision_id, r.approved, r.signal_id FROM orders o "
        "LEFT JOIN risk_decisions r ON r.id = o.risk_decision_id WHERE o.purpose = 'entry'",
    )
    assert linked and all(rid is not None and ok and sid for rid, ok, sid in linked), linked
    assert _rows(db, "SELECT COUNT(*) FROM fills")[0][0] >= 2
    equity_ts = [t for (t,) in _rows(db, "SELECT timestamp FROM equity_snapshots ORDER BY id")]
    assert equity_ts == sorted(set(equity_ts)) and len(equity_ts) >= LIMIT - 1
    # the demo keeps its records in its own folder: the real bot's vault and snapshots are
    # never written (nor rotated) by a demo
    demo = tmp_path / "data" / "demo"
    assert not (tmp_path / "data" / "vault").exists()
    assert not (tmp_path / "data" / "snapshots").exists()
    trades = list((demo / "vault" / "trades").glob("*.jsonl"))
    assert trades, "closed trades are written to the vault"
    record = json.loads(trades[0].read_text().splitlines()[0])
    assert record["data"]["exit_reason"] and record["data"]["mode"] == "paper"
    assert Decimal(record["data"]["amount"]) > 0, "a trade record carries the closed size"
    assert list((demo / "vault" / "version_changes").glob("*.jsonl"))
    assert (demo / "snapshots" / "latest.json").exists()
    closed = _rows(db, "SELECT amount FROM positions WHERE closed_at IS NOT NULL")
    assert closed and all(Decimal(str(a)) > 0 for (a,) in closed), closed
    # the alerts went out through Apprise to the loopback endpoint, with the trade in them
    titles = [m.get("title", "") for m in inbox]
    assert any("filled BTC/USDT" in t for t in titles), titles
    assert any(t.startswith("[PAPER] Exit BTC/USDT") for t in titles), titles
    exit_alert = next(m for m in inbox if m.get("title", "").startswith("[PAPER] Exit"))
    assert "USDT" in exit_alert["title"] and exit_alert.get("message")
    assert not exit_alert["message"].startswith("0 BTC"), exit_alert["message"]
    assert _rows(db, "SELECT COUNT(*) FROM alerts")[0][0] >= 2


def _snapshots_so_far(db: Path) -> int:
    """Equity snapshots the running demo has written (0 before its schema exists: the file
    appears before the migration has created the tables)."""
    if not db.exists():
        return 0
    try:
        return int(_rows(db, "SELECT COUNT(*) FROM equity_snapshots")[0][0])  # type: ignore[call-overload]
    except sqlite3.OperationalError:  # no such table yet, or the migration holds a lock
        return 0


def _demo(data: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATA_DIR": str(data), "COLUMNS": "160"}
    return subprocess.Popen(
        [sys.executable, "-m", "kmg_autotrader", "demo", "--no-web", "--limit", str(LIMIT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _real_bot_records(data: Path) -> dict[str, bytes]:
    """The real bot's snapshots (more than a demo would keep) and vault: a demo must leave
    them as they are. Returns every file's content by relative path."""
    snapshots = data / "snapshots"
    snapshots.mkdir(parents=True)
    for n in range(60):
        (snapshots / f"snapshot-20240101T{n // 60:02d}{n % 60:02d}00000Z.json").write_text("{}")
    (snapshots / "latest.json").write_text('{"real": true}')
    trades = data / "vault" / "trades"
    trades.mkdir(parents=True)
    (trades / "2024-01-01.jsonl").write_text('{"data": {"real": true}}\n')
    return _files(data, ("snapshots", "vault"))


def _files(data: Path, folders: tuple[str, ...]) -> dict[str, bytes]:
    return {
        str(p.relative_to(data)): p.read_bytes()
        for folder in folders
        for p in (data / folder).rglob("*")
        if p.is_file()
    }


def test_sigterm_stops_cleanly_and_a_restart_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "demo.sqlite"
    real = _real_bot_records(data)
    first = _demo(data, "--speed", "0")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # let it get well into the replay
        if _snapshots_so_far(db) > 300:
            break
        time.sleep(0.5)
    first.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    _out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err[-2000:]
    assert time.monotonic() - stopped_at < 10, "SIGTERM must stop the bot within seconds"
    assert "Traceback" not in err
    processed_first = _rows(db, "SELECT COUNT(*) FROM equity_snapshots")[0][0]
    assert 300 < processed_first < LIMIT
    _assert_consistent(db) if _rows(db, "SELECT COUNT(*) FROM orders")[0][0] else None

    second = _demo(data, "--speed", "0", "--resume")
    _out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-2000:]
    equity_ts = [t for (t,) in _rows(db, "SELECT timestamp FROM equity_snapshots ORDER BY id")]
    assert equity_ts == sorted(set(equity_ts)), "a resumed run never replays a candle twice"
    start = equity_ts[0]
    assert equity_ts[-1] == start + (LIMIT - 1) * TF  # ...and never skips one
    _assert_consistent(db)
    # the demo wrote its own vault and snapshots (kept across --resume), never the real ones
    assert _files(data, ("snapshots", "vault")) == real
    assert (data / "demo" / "snapshots" / "latest.json").exists()
    versions = list((data / "demo" / "vault" / "version_changes").glob("*.jsonl"))
    assert len(versions) == 1 and len(versions[0].read_text().splitlines()) == 1
    # the daily summaries of the replayed days, across the stop and the resume: each once,
    # none missing (the schedule is in the demo's database)
    days = [
        json.loads(line)["data"]["day"]
        for path in sorted((data / "demo" / "vault" / "daily_summaries").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert days and len(days) == len(set(days)), days
    ordinals = [date.fromisoformat(day).toordinal() for day in days]
    assert ordinals == list(range(ordinals[0], ordinals[0] + len(days))), days
