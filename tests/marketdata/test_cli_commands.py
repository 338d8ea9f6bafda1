"""`kmg download` and `kmg data list|import` through typer's runner (no internet)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kmg_autotrader.collector import cli_commands
from kmg_autotrader.exchange import ExchangeAdapter, RetryPolicy
from tests.data import BTC_PAIRS_DIR, BTC_USDT_CSV
from tests.fakes.fake_exchange import FakeExchange, random_walk_candles

DAY = 86_400_000

app = typer.Typer()
app.command("download")(cli_commands.download)
app.add_typer(cli_commands.data_app, name="data")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EXCHANGE", "binance")


@pytest.fixture
def threaded_fake() -> Iterator[FakeExchange]:
    """The fake exchange on its own loop thread (the CLI runs its own asyncio.run)."""
    loop = asyncio.new_event_loop()
    fake = FakeExchange()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(5)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_import_real_files_then_list() -> None:
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            str(BTC_USDT_CSV),
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "5m",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "imported 10999" in result.output
    result = runner.invoke(app, ["data", "import", str(BTC_PAIRS_DIR / "ADA_BTC-5m.feather")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "ADA/BTC" in result.output and "BTC/USDT" in result.output and "10999" in result.output
    assert "40 missing" in result.output


def test_bad_file_is_exit_2_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2000,1,2,0.5,1.5,1\n1000,1,2,0.5,1.5,1\n")
    result = runner.invoke(app, ["data", "import", str(bad), "--symbol", "BTC/USDT"])
    assert result.exit_code == 2
    assert "row 2" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "data" / "candles").exists()


def test_unknown_symbol_in_name_needs_option(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text("timestamp,open,high,low,close,volume\n0,1,2,0.5,1.5,1\n")
    result = runner.invoke(app, ["data", "import", str(path)])
    assert result.exit_code == 2 and "--symbol" in result.output


def test_download_via_fake_exchange(
    threaded_fake: FakeExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    now = int(time.time() * 1000)
    start = (now - 3 * DAY) // 3_600_000 * 3_600_000
    threaded_fake.set_klines("BTCUSDT", "1h", random_walk_candles(start, 3 * 24 + 1, 3_600_000))
    monkeypatch.setattr(
        cli_commands,
        "adapter_factory",
        lambda s: ExchangeAdapter(s.exchange, config=threaded_fake.binance_config()),
    )
    result = runner.invoke(
        app, ["download", "--symbols", "BTC/USDT", "--timeframe", "1h", "--days", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "BTC/USDT 1h via ohlcv: +" in result.output
    result = runner.invoke(app, ["download", "--symbols", "NOPE/USDT", "--timeframe", "1h"])
    assert result.exit_code == 2 and "NOPE/USDT" in result.output


def test_download_unreachable_exchange_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = {"urls": {"api": {"public": "http://127.0.0.1:9/api/v3"}}, "timeout": 500}
    monkeypatch.setattr(
        cli_commands,
        "adapter_factory",
        lambda s: ExchangeAdapter(
            s.exchange, config=dead, retry=RetryPolicy(attempts=2, initial_wait=0.01)
        ),
    )
    result = runner.invoke(app, ["download", "--symbols", "BTC/USDT"])
    assert result.exit_code == 1
    assert "unreachable" in result.output and "Traceback" not in result.output


def test_bad_options_exit_2() -> None:
    result = runner.invoke(app, ["download", "--timeframe", "7m"])
    assert result.exit_code == 2 and "TIMEFRAME" in result.output
    result = runner.invoke(app, ["download", "--help"])
    assert result.exit_code == 0 and "--days" in result.output
