"""One instance per DATA_DIR and mode (issue 19 item 3): a second `kmg demo` exits 2 with one
line naming the first (pid, port) before it touches anything, the first keeps its token, its
database and its trading; a killed instance never leaves a lock that blocks; `kmg run` is
locked the same way."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmg_autotrader.instance_lock import InstanceLockedError, acquire
from tests.autopilot.demo_process import DemoProcess, free_port, get_json


def _snapshots(db: Path) -> int:
    try:
        with sqlite3.connect(db) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM equity_snapshots").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _fingerprint(path: Path) -> tuple[bytes, int, int]:
    stat = path.stat()
    return path.read_bytes(), stat.st_mtime_ns, stat.st_ino


def test_a_second_demo_is_refused_and_the_first_is_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    first = DemoProcess(data, "--speed", "20", web_port=port)
    token_file, db = data / "web_api_token", data / "demo.sqlite"
    try:
        _wait_for(lambda: token_file.exists() and _snapshots(db) > 5, "the first demo")
        token = token_file.read_text().strip()
        _wait_for(lambda: get_json(port, "/positions", token) is not None, "the dashboard")
        token_before = _fingerprint(token_file)
        db_inode = db.stat().st_ino
        # another port (so the busy port cannot be what stops it), then without the dashboard
        for args in ((), ("--no-web",)):
            second = DemoProcess(data, *args, web_port=free_port())
            try:
                code = second.finish(timeout=60)
            finally:
                second.kill()  # (before the lock, a second demo ran on)
            message = "".join(second.err).strip()
            assert code == 2, (args, second.out, message)
            assert len(message.splitlines()) == 1, message
            assert f"pid {first.proc.pid}" in message and f"port {port}" in message, message
            assert message.startswith("error: another `kmg demo` is running"), message
            assert first.proc.poll() is None, "the first demo still runs"
        assert _fingerprint(token_file) == token_before, "the first's token was rewritten"
        assert db.stat().st_ino == db_inode, "the first's database was replaced"
        assert get_json(port, "/positions", token) is not None, "the first's token still works"
        seen = _snapshots(db)
        _wait_for(lambda: _snapshots(db) > seen + 10, "the first demo to go on trading")
        first.proc.send_signal(signal.SIGTERM)
        assert first.finish() == 0, "".join(first.err)[-2000:]
        assert "positions closed" in first.out
    finally:
        first.kill()


def test_demo_port_option_moves_the_dashboard(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    demo = DemoProcess(data, "--port", str(port), web_port=free_port())
    try:
        token_file = data / "web_api_token"
        _wait_for(
            lambda: (
                token_file.exists()
                and get_json(port, "/positions", token_file.read_text().strip()) is not None
            ),
            f"the dashboard on --port {port}",
        )
        _wait_for(lambda: f"http://127.0.0.1:{port}" in demo.out, "the status line")
        demo.proc.send_signal(signal.SIGTERM)
        assert demo.finish() == 0, "".join(demo.err)[-2000:]
    finally:
        demo.kill()


def test_a_killed_demo_leaves_no_lock_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = DemoProcess(data, "--no-web")
    try:
        _wait_for(lambda: _snapshots(data / "demo.sqlite") > 0, "the first demo")
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=30)
    finally:
        first.kill()
    assert (data / ".kmg-demo.lock").exists(), "the lock file stays; the lock does not"
    second = DemoProcess(data, "--no-web", "--speed", "0", "--limit", "60")
    code = second.finish(timeout=120)
    assert code == 0, "".join(second.err)[-2000:]
    assert "candles processed" in second.out


def test_kmg_run_is_locked_per_data_dir_and_mode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    held = acquire(data, "paper", port=8123, command="kmg run")
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "TRADING_MODE")}
        env.update({"DATA_DIR": str(data), "DATABASE_URL": f"sqlite:///{data / 'bot.sqlite'}"})
        result = subprocess.run(
            [sys.executable, "-m", "kmg_autotrader", "run", "--no-web"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert result.returncode == 2, (result.stdout, result.stderr)
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1, message
        assert f"pid {os.getpid()}" in message and "port 8123" in message, message
        assert "`kmg run`" in message, message
        assert not (data / "bot.sqlite").exists(), "refused before opening the database"
    finally:
        held.release()


def test_the_lock_is_per_mode_and_released_with_its_holder(tmp_path: Path) -> None:
    demo = acquire(tmp_path, "demo", port=None)
    paper = acquire(tmp_path, "paper", port=8000)  # another mode: not blocked
    with pytest.raises(InstanceLockedError, match=rf"pid {os.getpid()}, no dashboard"):
        acquire(tmp_path, "demo", port=9000)
    demo.release()
    acquire(tmp_path, "demo", port=9000).release()
    paper.release()
