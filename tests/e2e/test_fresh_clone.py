"""The README's LIVE rehearsal, as a new user does it: `.env` from `.env.example`, then
`kmg venue --exchange binance --speed 60 &` and the lines it prints added to `.env`, then
`kmg run --live` (dashboard on): it trades LIVE against the venue and the dashboard shows LIVE
equity equal to the venue's balances.

Regression: the venue printed only ``EXCHANGE_API_URL`` and the keys, so with `.env.example`'s
``TRADING_MODE=paper`` and ``SYMBOLS=BTC/USDT,ETH/USDT`` (ETH/USDT is not replayed) `kmg run
--live` refused to start.
"""

from __future__ import annotations

import shutil
import socket
from decimal import Decimal
from pathlib import Path

import httpx

from tests.e2e.harness import REPO, BotProcess, VenueConfig, VenueProcess, wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_lines_the_venue_prints_are_all_a_fresh_env_needs_for_kmg_run_live(
    tmp_path: Path,
) -> None:
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    venue = VenueProcess(tmp_path, VenueConfig(speed=60.0, give_keys=False))
    venue.config.state = tmp_path / "data" / "venue" / "binance-state.json"
    await venue.start()
    bot: BotProcess | None = None
    try:
        printed = venue.env_lines()
        assert printed["EXCHANGE_API_URL"] == venue.url and printed["BINANCE_API_KEY"]
        with (tmp_path / ".env").open("a", encoding="utf-8") as env:
            env.write("".join(f"{k}={v}\n" for k, v in printed.items()))
        port = _free_port()  # only because tests share the machine: the README keeps 8000
        # nothing but the .env file (read from the working directory) and the web port
        bot = BotProcess(tmp_path, {"WEB_PORT": str(port)}, live=True, web=True).start()
        token_file = tmp_path / "data" / "web_api_token"

        def live_equity() -> Decimal | None:
            if not token_file.exists():
                return None
            answer = httpx.get(
                f"http://127.0.0.1:{port}/equity",
                headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
                timeout=5,
            ).json()
            if answer.get("mode") != "live" or not answer.get("points"):
                return None
            return Decimal(str(answer["points"][-1]["equity"]))

        equity = await wait_until(
            live_equity, what="LIVE equity on the dashboard", timeout=60, watch=[bot, venue]
        )
        async with venue.client() as client:
            balances = (await client.books())["balances"]
            state = await client.state()
        assert equity == Decimal(balances["USDT"]["free"]) == Decimal(10_000)
        assert state["signed_requests"].get("GET /api/v3/account", 0) >= 1  # LIVE, signed
        # one start-up reconciliation (the periodic one used to repeat it at once: on Kraken
        # 6 s of throttled private calls ahead of the first order)
        assert state["signed_requests"].get("GET /api/v3/openOrders", 0) == 1
        assert await _stop(bot) == 0
    finally:
        if bot is not None:
            bot.kill()
        venue.kill()


async def _stop(bot: BotProcess) -> int:
    code = bot.stop(timeout=5)
    assert bot.exit_seconds is not None and bot.exit_seconds < 5
    return code
