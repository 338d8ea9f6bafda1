"""`kmg paper reset|export` and `kmg flatten` through typer (no network: a local fake)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.exchange import ExchangeAdapter
from kmg_autotrader.execution import cli_commands
from kmg_autotrader.execution.runtime import build_manager, open_paper_exchange
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.fakes.fake_exchange_orders import MARKETS, FakeOrderExchange

from .helpers import intent

D = Decimal
runner = CliRunner()
app = typer.Typer()
app.add_typer(cli_commands.paper_app, name="paper")
app.command("flatten")(cli_commands.flatten)
app.command("noop")(lambda: None)


@pytest.fixture
def threaded_fake() -> Iterator[FakeOrderExchange]:
    """The fake exchange on its own loop thread (the CLI runs its own asyncio.run)."""
    loop = asyncio.new_event_loop()
    fake = FakeOrderExchange()
    fake.trade(D(20000))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(5)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def repos_now() -> Repositories:
    settings = load_settings(env_file=None)
    return Repositories(open_database(settings.database_url))


def test_paper_reset_then_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["paper", "reset", "--balance", "2500", "--quote", "usdt"])
    assert result.exit_code == 0, result.output
    assert "2500 USDT" in result.output
    repos = repos_now()
    (balance,) = repos.balances.all(Mode.PAPER)
    assert balance.currency == "USDT" and balance.free == D(2500)
    assert repos.balances.all(Mode.LIVE) == []
    out = tmp_path / "out" / "paper_ledger.json"
    result = runner.invoke(app, ["paper", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["mode"] == "paper" and data["balances"][0]["free"] == "2500"
    assert data["exchange_book"]["balances"]["USDT"] == ["2500", "0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--balance", "abc"], "not a number"),
        (["--balance", "-5"], "positive"),
        (["--quote", "US-DT"], "currency code"),
    ],
)
def test_paper_reset_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["paper", "reset", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_flatten_refuses_live_without_everything() -> None:
    result = runner.invoke(app, ["flatten", "--live"])
    assert result.exit_code == 2
    assert "refusing to trade LIVE" in result.output and "Traceback" not in result.output


def test_flatten_paper_nothing_open() -> None:
    result = runner.invoke(app, ["flatten"])
    assert result.exit_code == 0, result.output
    assert "nothing open" in result.output


def test_flatten_paper_closes_positions(
    threaded_fake: FakeOrderExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(env_file=None)
    repos = repos_now()

    async def open_one() -> None:
        exchange = open_paper_exchange(settings, repos, MARKETS)
        exchange.engine.on_price("BTC/USDT", D(20000))
        manager = build_manager(settings, repos, exchange, Mode.PAPER)
        report = await manager.execute(intent(created_at=1))
        assert report.status == "filled"

    asyncio.run(open_one())
    assert len(repos.positions.open_positions(Mode.PAPER)) == 1
    monkeypatch.setattr(
        cli_commands,
        "adapter_factory",
        lambda s: ExchangeAdapter("binance", config=threaded_fake.binance_config()),
    )
    result = runner.invoke(app, ["flatten"])
    assert result.exit_code == 0, result.output
    assert "1 positions closed" in result.output
    assert repos.positions.open_positions(Mode.PAPER) == []
    (closed,) = repos.positions.closed_positions(Mode.PAPER)
    assert closed.exit_reason == "flatten"
    balances = {b.currency: b for b in repos.balances.all(Mode.PAPER)}
    assert balances["BTC"].free == 0
