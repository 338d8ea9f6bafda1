"""``kmg venue`` as a user runs it: help, a real start that prints its URL and keys, a ccxt
client using them, a clean stop on SIGTERM, and one clear line for bad input."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ccxt.pro as ccxt_pro
from typer.testing import CliRunner

from kmg_autotrader.cli import app
from kmg_autotrader.exchange.urls import apply_url_overrides
from kmg_autotrader.venue import VenueClient

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC
    env["PYTHONUNBUFFERED"] = "1"
    env["DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "200"
    return env


def _kmg(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``python -m kmg_autotrader.cli ARGS`` with the worktree's sources."""
    return subprocess.run(
        [sys.executable, "-m", "kmg_autotrader.cli", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )


def test_help(tmp_path: Path) -> None:
    done = _kmg("venue", "--help", tmp_path=tmp_path)
    assert done.returncode == 0
    for flag in ("--exchange", "--data", "--speed", "--port", "--api-key", "--state", "--chaos"):
        assert flag in done.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # a private DATA_DIR, as the kmg entry point's umask makes it (in-process, CliRunner does
    # not run main()): a shared one would add its own warning line
    (tmp_path / "data").mkdir(mode=0o700, exist_ok=True)
    (tmp_path / "data").chmod(0o700)
    runner = CliRunner()
    for args, message in (
        (["--fault", "meteor"], "unknown fault kind 'meteor'"),
        (["--chaos", "1", "--chaos-rate", "2"], "chaos rate must be between 0 and 1"),
        (["--data", "nowhere.csv"], "neither a sample set"),
        (["--exchange", "mtgox"], "unknown exchange 'mtgox'"),
        (["--api-key", "k"], "--api-key and --secret go together"),
        (["--balance", "lots"], "--balance 'lots' is not a non-negative number"),
    ):
        done = runner.invoke(app, ["venue", *args])
        assert done.exit_code == 2, done.output
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "data" / "venue").exists()  # nothing written


async def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """``kmg venue --port 0 --speed 60`` in the background; returns it and its banner."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmg_autotrader.cli", "venue", "--port", "0", "--speed", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line:
            break
        banner.append(line)
        if "books:" in line:
            break
    return proc, "".join(banner)


async def _sigterm(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == 0, err
    return out, err


async def test_start_prints_url_and_keys_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc, text = await _start(tmp_path)
    try:
        url = re.search(r"EXCHANGE_API_URL=(http://127\.0\.0\.1:\d+)", text)
        key = re.search(r"BINANCE_API_KEY=(\w+)", text)
        secret = re.search(r"BINANCE_SECRET_KEY=(\w+)", text)
        token = re.search(r"control token: (\S+)", text)
        assert url and key and secret and token, text
        ex: Any = ccxt_pro.binance({"apiKey": key[1], "secret": secret[1], "timeout": 5000})
        apply_url_overrides(ex, url[1])
        try:
            await ex.load_markets()
            await ex.create_order("BTC/USDT", "market", "buy", 0.001)
            balance = await ex.fetch_balance()
            assert balance["BTC"]["free"] == 0.001
        finally:
            await ex.close()
        async with VenueClient(url[1], token[1]) as control:
            state = await control.state()
        assert state["speed"] == 60 and list(state["symbols"]) == ["BTC/USDT"]
        out, err = await _sigterm(proc)
        assert "venue stopped" in out
        assert secret[1] not in err  # the log never shows the secret
        # started again on the same DATA_DIR: same account, same books
        proc, text = await _start(tmp_path)
        assert f"BINANCE_API_KEY={key[1]}" in text
        url = re.search(r"EXCHANGE_API_URL=(http://127\.0\.0\.1:\d+)", text)
        assert url, text
        ex = ccxt_pro.binance({"apiKey": key[1], "secret": secret[1], "timeout": 5000})
        apply_url_overrides(ex, url[1])
        try:
            assert (await ex.fetch_balance())["BTC"]["free"] == 0.001
        finally:
            await ex.close()
        await _sigterm(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
