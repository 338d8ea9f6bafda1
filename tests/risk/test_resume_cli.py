"""``kmg resume`` as a user runs it (a subprocess) against the risk manager of a bot built as
``kmg run`` builds it, sharing its SQLite file: the running bot's next decision sees the clear."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

import kmg_autotrader
from kmg_autotrader.autopilot.wiring import BotRuntime, build_runtime, sample_markets
from kmg_autotrader.config import Settings, load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import SimulatedClock, now_ms
from kmg_autotrader.execution.paper import PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.risk import ReasonCode, RiskManager
from kmg_autotrader.risk.clearing import stored_manager
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.risk.helpers import btc_market, candidate, portfolio

SRC = str(Path(kmg_autotrader.__file__).resolve().parents[1])
D = Decimal


def _kmg(data_dir: Path, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONPATH": SRC, "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "kmg_autotrader.cli", "resume", *args],
        input=answer if answer is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, data_dir=tmp_path / "data", advisor_mode="off", symbols=["BTC/USDT"])


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[tuple[BotRuntime, Repositories]]:
    """The PAPER bot's runtime over the file the CLI uses (DATA_DIR/kmg.sqlite)."""
    database = open_database(settings.database_url)
    repos = Repositories(database)
    clock = SimulatedClock(now_ms())
    markets = sample_markets(["BTC/USDT"], "binance")
    paper = PaperExchange(
        PaperEngine(markets, settings=PaperSettings(), clock=clock, balances={"USDT": D(10_000)})
    )
    runtime = build_runtime(
        settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=paper,
        markets=markets,
        paper=paper,
        quote="USDT",
    )
    yield runtime, repos
    await runtime.stop()
    database.dispose()


def _trip(risk: RiskManager) -> None:
    now = now_ms()
    risk.update_equity(D(10_000), now)
    risk.update_equity(D(9_400), now + 1)  # -6 %: drawdown breaker (5 %) and kill-switch (3 %)


async def test_kmg_resume_clears_the_running_bots_breaker_after_confirmation(
    bot: tuple[BotRuntime, Repositories], settings: Settings
) -> None:
    runtime, repos = bot
    risk = runtime.bot.p.risk  # the manager the running bot decides with
    _trip(risk)
    blocked = risk.evaluate(candidate(), portfolio(equity="9400"), btc_market())
    assert blocked.reason_code == ReasonCode.DRAWDOWN_BREAKER
    runtime.bot.pause("web:session", "by hand")  # the other switch: must stay as it is

    declined = _kmg(settings.data_dir, answer="n\n")
    assert declined.returncode == 1, declined.stdout + declined.stderr
    assert "drawdown breaker tripped" in declined.stdout
    assert "not confirmed: nothing was changed" in declined.stderr
    assert risk.status()["breaker"]["tripped"]
    assert not repos.events.recent(Mode.PAPER, kind="breaker_cleared")

    done = _kmg(settings.data_dir, answer="y\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Cleared the PAPER drawdown breaker (by cli:" in done.stdout
    assert "Cleared the PAPER daily loss kill-switch (by cli:" in done.stdout
    assert "Read back: neither the breaker nor the kill-switch of PAPER is tripped" in done.stdout
    assert "Trading pause unchanged: trading is PAUSED" in done.stdout
    # the running bot's own manager, reading its persisted state, lets the next entry through
    status = risk.status()
    assert not status["breaker"]["tripped"] and not status["kill_switch"]["tripped"]
    assert status["breaker"]["cleared_by"].startswith("cli:")
    assert status["equity"]["peak"] == D(9_400)
    decision = risk.evaluate(candidate(), portfolio(equity="9400"), btc_market())
    assert decision.approved, decision.message
    assert runtime.bot.is_paused()  # clearing a breaker is not resuming trading
    (event,) = repos.events.recent(Mode.PAPER, kind="breaker_cleared")
    assert event["details"]["by"].startswith("cli:")

    again = _kmg(settings.data_dir, "--yes")
    assert again.returncode == 1
    assert "nothing to clear" in again.stderr and "Traceback" not in again.stderr
    assert len(repos.events.recent(Mode.PAPER, kind="breaker_cleared")) == 1


async def test_kmg_resume_mode_clears_only_that_mode(
    bot: tuple[BotRuntime, Repositories], settings: Settings
) -> None:
    runtime, repos = bot
    _trip(runtime.bot.p.risk)  # PAPER
    live = stored_manager(settings, repos, Mode.LIVE)
    _trip(live)
    done = _kmg(settings.data_dir, "--mode", "live", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Cleared the LIVE drawdown breaker" in done.stdout
    assert not live.status()["breaker"]["tripped"]
    assert runtime.bot.p.risk.status()["breaker"]["tripped"]
    bad = _kmg(settings.data_dir, "--mode", "demo", "--yes")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
