"""The README's LIVE rehearsal, as a new user does it: `.env` from `.env.example`, then
`kmg venue --exchange binance --speed 60 &` and the lines it prints added to `.env`, then
`kmg run --live` (dashboard on): it trades LIVE against the venue and the dashboard shows LIVE
equity equal to the venue's balances.

Regression: the venue printed only ``EXCHANGE_API_URL`` and the keys, so with `.env.example`'s
``TRADING_MODE=paper`` and ``SYMBOLS=BTC/USDT,ETH/USDT`` (ETH/USDT is not replayed) `kmg run
--live` refused to start.

Also the README's `python3 main.py` from a fresh clone, with the system python3 and no virtualenv
active: it starts again under the clone's `.venv` (regression: ModuleNotFoundError).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

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


SYSTEM_PYTHON = Path("/usr/bin/python3")


def _fresh_clone(target: Path) -> Path:
    """The repository's tracked files as they are now (a clone of the working tree)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _user_env() -> dict[str, str]:
    """A shell with no virtualenv active and nothing on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["COLUMNS"] = "120"
    return env


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 on this machine")
def test_python3_main_py_from_a_fresh_clone_runs_under_its_venv(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path / "kmg-autotrader")
    # install.sh's .venv: the one this suite runs in (CI: the clone's own, fresh)
    (clone / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    commands = clone / "src" / "kmg_autotrader" / "autopilot" / "cli_commands.py"
    text = commands.read_text(encoding="utf-8")
    assert "Run the bot 24/7" in text
    commands.write_text(text.replace("Run the bot 24/7", "Run the CLONED bot 24/7"), "utf-8")
    result = subprocess.run(
        [str(SYSTEM_PYTHON), "main.py", "--help"],
        cwd=clone,
        env=_user_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: kmg run" in result.stdout
    assert "Traceback" not in result.stderr
    # the clone's own code ran (its src first), not the checkout the .venv was made for
    assert "Run the CLONED bot 24/7" in result.stdout


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 on this machine")
def test_python3_main_py_without_a_venv_says_to_run_install_sh(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path / "kmg-autotrader")
    result = subprocess.run(
        [str(SYSTEM_PYTHON), "main.py"],
        cwd=clone,
        env=_user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode == 0:  # pragma: no cover - the system python has every dependency
        pytest.skip("the system python3 has kmg-autotrader's dependencies installed")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "bash install.sh" in result.stderr
