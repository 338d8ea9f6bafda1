"""Daily and weekly summaries of an account marked at 0 (a LIVE account before its first
balance): no division error, the undefined percentages read "n/a"."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

from kmg_autotrader.autopilot.reports import period_summary, summary_line
from kmg_autotrader.autopilot.wiring import build_runtime, sample_markets
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import EquityPoint, Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.paper import PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.storage.repositories import Repositories

SUNDAY = 1_704_585_600_000  # 2024-01-07 00:00 UTC
MONDAY = SUNDAY + 86_400_000
HOUR = 3_600_000


def _zero_equity(repos: Repositories, mode: Mode, start: int, hours: int) -> None:
    for h in range(hours):
        repos.equity.add(EquityPoint(mode, start + h * HOUR, Decimal(0), Decimal(0), Decimal(0)))


@pytest.mark.db
def test_period_summary_of_zero_equity_says_n_a(repos: Repositories) -> None:
    _zero_equity(repos, Mode.LIVE, SUNDAY, 6)
    summary = period_summary(repos, Mode.LIVE, SUNDAY, MONDAY, quote="USDT")
    assert summary["pnl_pct"] is None and summary["max_drawdown_pct"] is None
    assert summary["equity"] == 0 and summary["equity_peak"] == 0
    line = summary_line(summary)
    assert "(n/a)" in line and "max drawdown n/a" in line
    # from a positive peak the figures exist as before; a zero point after it is a 100 % fall
    repos.equity.add(EquityPoint(Mode.LIVE, SUNDAY + 7 * HOUR, Decimal(100), Decimal(100), 0))
    repos.equity.add(EquityPoint(Mode.LIVE, SUNDAY + 8 * HOUR, Decimal(0), Decimal(0), 0))
    summary = period_summary(repos, Mode.LIVE, SUNDAY, MONDAY, quote="USDT")
    assert summary["max_drawdown_pct"] == pytest.approx(100.0)
    empty = period_summary(repos, Mode.LIVE, MONDAY, MONDAY + 86_400_000, quote="USDT")
    assert empty["max_drawdown_pct"] == 0.0 and empty["equity"] is None
    assert "equity n/a" in summary_line(empty)


@pytest.mark.db
async def test_the_bot_sends_its_daily_and_weekly_summaries(
    repos: Repositories, tmp_path: Path
) -> None:
    settings = load_settings(None, data_dir=tmp_path, advisor_mode="off", symbols=["BTC/USDT"])
    clock = SimulatedClock(SUNDAY + 12 * HOUR)
    markets = sample_markets(["BTC/USDT"], "binance")
    paper = PaperExchange(
        PaperEngine(markets, settings=PaperSettings(), clock=clock, balances={"USDT": Decimal(0)})
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
    _zero_equity(repos, Mode.PAPER, SUNDAY, 12)
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO")
    try:
        assert "daily" not in await runtime.bot.jobs.tick()  # the first tick only starts the day
        clock.set(MONDAY + 60_000)  # a new day and a new week
        ran = await runtime.bot.jobs.tick()
    finally:
        logger.remove(sink)
        await runtime.stop()
    assert "daily" in ran and "weekly" in ran, lines
    assert not [line for line in lines if "failed" in line]
    assert any("day 2024-01-07" in line and "max drawdown n/a" in line for line in lines)
    assert any("week 2024-01-01" in line and "n/a" in line for line in lines)


def test_the_run_summary_of_a_zero_equity_run_says_n_a(capsys: pytest.CaptureFixture[str]) -> None:
    from kmg_autotrader.autopilot.bot import BotSummary
    from kmg_autotrader.autopilot.cli_commands import _print_summary

    _print_summary(BotSummary(first_equity=Decimal(0), last_equity=Decimal(0)), "KMG run")
    out = capsys.readouterr().out
    assert "return" in out and "n/a" in out
