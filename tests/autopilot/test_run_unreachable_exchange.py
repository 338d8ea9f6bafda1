"""Issue 18.9: `kmg run` with an exchange it cannot reach retries, says so, and never trades
sample data; it exits 1 only after EXCHANGE_UNREACHABLE_EXIT_SECONDS unreachable at start.

Regression: in PAPER it silently replayed the bundled 2023 sample for ~3 hours (as if it were
`kmg demo`) and then exited 0.

As a user runs it: `kmg run --web` as a process, EXCHANGE_API_URL on a closed loopback port.
While nothing listens there: an ``exchange_unreachable`` error event and an alert are recorded,
the dashboard's /health says degraded, feed ``exchange_unreachable`` and why, and no candle,
decision or equity point exists (nothing replayed). Then `kmg venue` starts on that very port:
the bot connects (``exchange_connected``), downloads, streams and trades on paper.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

from kmg_autotrader.domain import Mode
from tests.e2e.harness import (
    BotProcess,
    HarnessError,
    Rehearsal,
    VenueConfig,
    VenueProcess,
    run_command,
)

ROWS = (4_693, 4_729)  # the packaged sample slice the venue replays (trades within a minute)
TOKEN = "e2e-api-token-0123456789abcdef0123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VenueOnPort(VenueProcess):
    """`kmg venue` on a given port (the one the bot was told to use before it existed)."""

    def __init__(self, workdir: Path, config: VenueConfig, port: int) -> None:
        super().__init__(workdir, config)
        self.port = port

    def args(self) -> list[str]:
        """The harness's command line with ``--port PORT``."""
        args = super().args()
        args[args.index("--port") + 1] = str(self.port)
        return args


def _health(port: int) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


async def test_kmg_run_retries_an_unreachable_exchange_says_so_and_trades_once_it_appears(
    tmp_path: Path,
) -> None:
    exchange_port, web_port = _free_port(), _free_port()
    r = Rehearsal(tmp_path, VenueConfig(exchange="binance", speed=600.0, warmup=1_100, rows=ROWS))
    r.venue = VenueOnPort(tmp_path, r.config, exchange_port)
    r.venue.url = f"http://127.0.0.1:{exchange_port}"  # nothing listens there yet
    r.set_risk()
    settings = r.settings(live=False, WEB_PORT=str(web_port), API_TOKEN=TOKEN)
    r.bot = BotProcess(tmp_path, settings, live=False, web=True).start()
    try:
        down = await r.wait_for(
            lambda: r.db.events(Mode.PAPER, "exchange_unreachable"),
            "an exchange_unreachable event",
            timeout=60,
        )
        assert down[0]["level"] == "error" and "retrying in" in down[0]["message"]
        health = await r.wait_for(lambda: _health(web_port), "the dashboard's /health", 30)
        assert health["status"] == "degraded"
        assert health["feed_status"] == "exchange_unreachable"
        assert "unreachable" in health["last_error"] and "retrying" in health["last_error"]
        alerts = r.db.repos.alerts.recent(Mode.PAPER)
        assert any(a["event"] == "feed_degraded" and "unreachable" in a["title"] for a in alerts)
        # nothing was replayed or decided meanwhile: no sample data, no demo database
        await asyncio.sleep(3)
        assert r.bot.running
        assert r.db.repos.equity.latest(Mode.PAPER) is None
        assert r.db.signals(Mode.PAPER) == []
        assert not (r.data_dir / "demo.sqlite").exists()

        await r.venue.start()  # the exchange appears on the port the bot keeps trying
        await r.wait_for(
            lambda: r.db.events(Mode.PAPER, "exchange_connected"), "exchange_connected", 60
        )
        await r.wait_for(
            lambda: r.db.closed_positions(Mode.PAPER),
            "a PAPER position opened and closed on the venue's data",
            timeout=90,
        )
        assert (await r.state())["requests"].get("GET /api/v3/klines", 0) >= 1
        assert await r.stop_bot() < 5
    finally:
        await r.__aexit__(None, None, None)
    log = r.bot.stderr_path.read_text() + r.bot.stdout_path.read_text()
    assert "sample data" not in log and "bundled" not in log


def test_kmg_run_exits_1_with_one_line_after_the_allowed_time_unreachable(tmp_path: Path) -> None:
    port = _free_port()
    settings = {
        "DATA_DIR": str(tmp_path / "data"),
        "EXCHANGE": "binance",
        "SYMBOLS": "BTC/USDT",
        "EXCHANGE_API_URL": f"http://127.0.0.1:{port}",
        "ADVISOR_MODE": "off",
        "EXCHANGE_UNREACHABLE_EXIT_SECONDS": "3",
    }
    try:
        done = run_command(tmp_path, settings, ["run", "--no-web"], timeout=90)
    except Exception as exc:  # the old code replayed the sample for hours instead
        raise HarnessError(f"kmg run did not give up: {exc}") from None
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot reach the exchange" in errors[0], done.stderr
    assert "EXCHANGE_UNREACHABLE_EXIT_SECONDS=3" in errors[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "demo.sqlite").exists()
