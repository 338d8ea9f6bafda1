"""The daily and weekly summaries across restarts, and over a whole week of equity points
(issue 18, item 17): APScheduler's job store in the bot's database keeps the next run times,
so a bot that was down across midnight still sends that day's summary, once; the weekly
summary reads every point of the week, not the newest 1,000."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from kmg_autotrader.autopilot.reports import period_summary, snapshot_state
from kmg_autotrader.autopilot.wiring import BotRuntime, build_runtime, sample_markets
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import EquityPoint, Mode, Position
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.paper import PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import VaultReader

SUNDAY = 1_704_585_600_000  # 2024-01-07 00:00 UTC
MONDAY = SUNDAY + 86_400_000
WEEK_BEFORE = MONDAY - 7 * 86_400_000  # Monday 2024-01-01
HOUR = 3_600_000
FIVE_MINUTES = 300_000


def _runtime(repos: Repositories, data: Path, now: int) -> BotRuntime:
    """A freshly started bot process (a restart: a new runtime over the same database)."""
    settings = load_settings(None, data_dir=data, advisor_mode="off", symbols=["BTC/USDT"])
    clock = SimulatedClock(now)
    markets = sample_markets(["BTC/USDT"], "binance")
    paper = PaperExchange(
        PaperEngine(markets, settings=PaperSettings(), clock=clock, balances={"USDT": Decimal(0)})
    )
    return build_runtime(
        settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=paper,
        markets=markets,
        paper=paper,
        quote="USDT",
    )


async def _ticks(runtime: BotRuntime, *moments: int) -> list[str]:
    ran: list[str] = []
    clock = runtime.bot.p.clock
    assert isinstance(clock, SimulatedClock)
    try:
        for moment in moments:
            clock.set(moment)
            ran += await runtime.bot.jobs.tick()
    finally:
        await runtime.stop()
    return ran


@pytest.mark.db
async def test_a_restart_across_midnight_still_sends_that_days_summary_once(
    repos: Repositories, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    # the bot runs on Sunday evening, and stops before midnight
    evening = SUNDAY + 22 * HOUR
    assert "daily" not in await _ticks(_runtime(repos, data, evening), evening + HOUR)
    # it starts again on Monday: Sunday's summary (and the week's) go out at its first tick
    ran = await _ticks(_runtime(repos, data, MONDAY + HOUR), MONDAY + HOUR, MONDAY + 2 * HOUR)
    assert ran.count("daily") == 1 and ran.count("weekly") == 1, ran
    # a second restart the same day sends nothing again
    ran = await _ticks(_runtime(repos, data, MONDAY + 3 * HOUR), MONDAY + 3 * HOUR)
    assert "daily" not in ran and "weekly" not in ran, ran
    days = [r["data"]["day"] for r in VaultReader(data).read("daily_summaries")]
    assert days == ["2024-01-07"], days
    # the schedule is in the bot's database: APScheduler's job store, one job per summary
    with repos.db.engine.connect() as connection:
        ids = sorted(row[0] for row in connection.execute(text("SELECT id FROM apscheduler_jobs")))
    assert ids == ["paper:daily_summary", "paper:weekly_summary"]


@pytest.mark.db
async def test_days_missed_while_down_each_get_their_summary(
    repos: Repositories, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    await _ticks(_runtime(repos, data, SUNDAY - 2 * 86_400_000), SUNDAY - 2 * 86_400_000)
    ran = await _ticks(_runtime(repos, data, MONDAY + HOUR), MONDAY + HOUR)
    assert ran.count("daily") == 3, ran  # Friday, Saturday, Sunday
    days = [r["data"]["day"] for r in VaultReader(data).read("daily_summaries")]
    assert days == ["2024-01-05", "2024-01-06", "2024-01-07"]


@pytest.mark.db
def test_the_weekly_summary_covers_every_point_of_a_week(repos: Repositories) -> None:
    """2,016 five-minute points (a week): the first is the start, the peak is early on."""
    points = 7 * 24 * 12
    for n in range(points):
        if n <= 10:
            equity = 1000 + 100 * n  # up to the week's peak, 2,000, early on
        elif n <= 20:
            equity = 2000 - 100 * (n - 10)  # down to 1,000: a 50 % fall
        else:
            equity = 1000 + (n - 20) * 500 // (points - 21)  # then up to 1,500
        value = Decimal(equity)
        repos.equity.add(EquityPoint(Mode.PAPER, WEEK_BEFORE + n * FIVE_MINUTES, value, value, 0))
    for n in range(200):  # the new week has begun when the summary runs
        repos.equity.add(
            EquityPoint(Mode.PAPER, MONDAY + n * FIVE_MINUTES, Decimal(9000), Decimal(9000), 0)
        )
    pid = repos.positions.open(
        Position(Mode.PAPER, "BTC/USDT", Decimal("0.1"), Decimal(20000), WEEK_BEFORE + HOUR)
    )
    repos.positions.close(
        Mode.PAPER,
        pid,
        closed_at=WEEK_BEFORE + 2 * HOUR,
        exit_price=Decimal(21000),
        exit_reason="take_profit",
        realized_pnl=Decimal(100),
        fees_paid=Decimal(0),
    )
    summary = period_summary(repos, Mode.PAPER, WEEK_BEFORE, MONDAY, quote="USDT")
    assert summary["equity_peak"] == 2000
    assert summary["max_drawdown_pct"] == pytest.approx(50.0)
    assert summary["equity"] == 1500
    assert summary["pnl_pct"] == pytest.approx(10.0)  # 100 on the week's first 1,000


@pytest.mark.db
def test_the_snapshots_performance_counts_every_closed_trade(repos: Repositories) -> None:
    """1,001 closed trades (one won): the snapshot's performance is over all of them."""
    from kmg_autotrader.storage.models import PositionRow

    with repos.db.session() as session:
        for n in range(1001):
            session.add(
                PositionRow(
                    mode="paper",
                    symbol="BTC/USDT",
                    amount=Decimal("0.1"),
                    entry_price=Decimal(20000),
                    opened_at=WEEK_BEFORE + n,
                    closed_at=WEEK_BEFORE + HOUR + n,
                    exit_price=Decimal(20000),
                    exit_reason="take_profit",
                    realized_pnl=Decimal(1001) if n == 0 else Decimal(-1),
                    fees_paid=Decimal(1),
                    extra={},
                )
            )
    state = snapshot_state(repos, Mode.PAPER, now=MONDAY, risk={}, health={}, settings_view={})
    performance = state["performance"]
    assert performance["closed_trades"] == 1001
    assert performance["realized_pnl"] == 1  # the one win is the oldest trade
    assert performance["fees_paid"] == 1001
