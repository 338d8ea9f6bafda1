"""A closed position's trade record: its size (not the 0 left held after the exit) in the
store, the vault's trade record, the exit alert and ``kmg paper export``; and the record says
which mode traded (issue 18, items 11 and 14)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kmg_autotrader.autopilot.wiring import BotRuntime, sample_markets
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Mode, OrderIntent, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution import cli_commands
from kmg_autotrader.execution.runtime import build_manager, open_paper_exchange
from kmg_autotrader.execution.tracker import PositionTracker
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import VaultReader

D = Decimal
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SYMBOL = "BTC/USDT"


def _intent(created_at: int, amount: str = "0.1") -> OrderIntent:
    return OrderIntent(
        mode=Mode.PAPER,
        symbol=SYMBOL,
        side=Side.BUY,
        amount=D(amount),
        price=D(20000),
        stop_loss=D(19000),
        take_profit=D(22000),
        created_at=created_at,
        reason="test",
    )


async def _round_trip(runtime: BotRuntime) -> None:
    """Enter 0.1 BTC at 20,000 and let the bot's stop check exit it at 18,990."""
    bot = runtime.bot
    clock = bot.p.clock
    assert isinstance(clock, SimulatedClock)
    await bot.on_price(SYMBOL, 20_000.0, T0)
    report = await bot.p.manager.execute(_intent(T0))
    assert report.status == "filled", report
    await bot.on_price(SYMBOL, 20_000.0, T0 + 60_000)  # the bot notices the entry
    clock.set(T0 + 120_000)
    await bot.on_price(SYMBOL, 18_990.0, T0 + 120_000)  # through the stop: the exit


@pytest.mark.db
async def test_a_closed_position_keeps_its_size_in_store_vault_and_alert(
    runtime: BotRuntime, repos: Repositories, tmp_path: Path
) -> None:
    await _round_trip(runtime)
    assert runtime.bot.summary.exits == 1
    (closed,) = repos.positions.closed_positions(Mode.PAPER)
    assert closed.exit_reason == "stop_loss"
    assert closed.amount == D("0.1"), "the closed size, not the 0 left held"
    (record,) = VaultReader(tmp_path / "data").read("trades")
    assert D(record["data"]["amount"]) == D("0.1")
    await runtime.alerts.flush()
    exits = [a for a in repos.alerts.recent(Mode.PAPER) if a["event"] == "position_exited"]
    assert exits, repos.alerts.recent(Mode.PAPER)
    assert exits[0]["body"].startswith("0.1 BTC:"), exits[0]["body"]


@pytest.mark.db
async def test_a_trade_record_says_which_mode_traded(runtime: BotRuntime, tmp_path: Path) -> None:
    await _round_trip(runtime)
    (record,) = VaultReader(tmp_path / "data").read("trades")
    assert record["data"]["mode"] == "paper"


def test_paper_export_shows_the_closed_size(tmp_path: Path) -> None:
    """``kmg paper export`` of a paper account that bought and sold 0.1 BTC."""
    settings = load_settings(env_file=None)  # DATA_DIR is the test's own (conftest)
    database = open_database(settings.database_url)
    repos = Repositories(database)

    async def trade() -> None:
        exchange = open_paper_exchange(settings, repos, sample_markets([SYMBOL], "binance"))
        exchange.engine.on_price(SYMBOL, D(20000))
        manager = build_manager(settings, repos, exchange, Mode.PAPER)
        assert (await manager.execute(_intent(1))).status == "filled"
        exchange.engine.on_price(SYMBOL, D(18990))
        (signal,) = await PositionTracker(manager).on_price(SYMBOL, D(18990))
        assert signal.report is not None and signal.report.status == "filled"

    try:
        asyncio.run(trade())
    finally:
        database.dispose()
    app = typer.Typer()
    app.add_typer(cli_commands.paper_app, name="paper")
    app.command("noop")(lambda: None)
    out = tmp_path / "ledger.json"
    result = CliRunner().invoke(app, ["paper", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    (closed,) = json.loads(out.read_text())["closed_positions"]
    assert closed["exit_reason"] == "stop_loss"
    assert D(closed["amount"]) == D("0.1")
