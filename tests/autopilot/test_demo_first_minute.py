"""`kmg demo` at its default settings shows the whole loop within its first minute (issue 19
item 1): a filled entry and a closed trade on the dashboard's API, a periodic status line on
the terminal, and the final summary after SIGTERM."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

from tests.autopilot.demo_process import DemoProcess, free_port, get_json

FIRST_MINUTE_S = 60.0


def test_default_demo_fills_and_closes_a_trade_within_a_minute(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    demo = DemoProcess(data, web_port=port)  # default speed, start and set
    token_file = data / "web_api_token"
    trades: list[dict[str, object]] = []
    try:
        while time.monotonic() - demo.started < FIRST_MINUTE_S and demo.proc.poll() is None:
            time.sleep(1)
            if not token_file.exists():
                continue
            answer = get_json(port, "/trades", token_file.read_text().strip())
            if answer and answer["items"]:
                trades = answer["items"]
                break
        elapsed = time.monotonic() - demo.started
        print(f"first closed trade on the dashboard {elapsed:.1f} s after the launch")
        assert trades, f"no closed trade on the dashboard after {elapsed:.0f} s: {demo.out}"
        trade = trades[-1]
        assert float(str(trade["amount"])) > 0 and trade["exit_price"], trade
        with sqlite3.connect(data / "demo.sqlite") as db:
            filled = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'filled'").fetchone()
        assert filled[0] >= 2, "the entry and its exit were filled"

        time.sleep(11)  # one periodic status line more, without a trade to prompt it
        status = [(t, line) for t, line in demo.lines if line.startswith("demo: candles")]
        assert len(status) >= 3, demo.out
        last = status[-1][1]
        assert re.search(r"candles [\d,]+ .* entries \d+ .* exits \d+ .* equity [\d,.]+ USDT", last)
        assert f"http://127.0.0.1:{port}" in last and str(token_file) in last, last
        assert any("entries 1" in line and "exits 1" in line for _, line in status), status
        # a line on each trade and one every few seconds: never a flood
        running_s = time.monotonic() - demo.started
        assert len(status) <= running_s / 5 + 4, status

        demo.proc.send_signal(signal.SIGTERM)
        assert demo.finish() == 0, "".join(demo.err)[-2000:]
        assert "positions closed" in demo.out and "entries filled" in demo.out, demo.out
    finally:
        demo.kill()
