"""``kmg backtest`` through typer's runner: runs on stored or packaged candles, exports, and
turns every bad input into one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kmg_autotrader.backtest.cli_commands import backtest
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.storage.candle_store import CandleStore
from tests.data import BTC_USDT_CSV

app = typer.Typer()
app.command("backtest")(backtest)


@app.command("other")
def _other() -> None:  # a second command keeps "backtest" a sub-command
    """Unused."""


runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EXCHANGE", "binance")


def test_sample_run_with_export(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--sample",
            "btc-usdt",
            "--strategy",
            "sma_cross_rsi",
            "--stake-amount",
            "100",
            "--no-fee-edge",
            "--risk",
            "cooldown_minutes=0",
            "--risk",
            "cooldown_after_loss_minutes=0",
            "--export",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "total return" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trades"] > 10 and metrics["strategy"] == "sma_cross_rsi"
    assert (out / "report.html").stat().st_size > 1000


def test_stored_candles_and_dates(tmp_path: Path) -> None:
    frame = load_sample_set("btc-usdt")["BTC/USDT"]
    CandleStore(tmp_path / "data").write_all("binance", "BTC/USDT", "5m", frame)
    result = runner.invoke(
        app,
        ["backtest", "--symbols", "BTC/USDT", "--start", "2023-01-10", "--end", "2023-01-20"],
    )
    assert result.exit_code == 0, result.output
    assert "2023-01-10T00:00:00Z" in result.output.replace("\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "btc-usdt", "--start", "2023-13-01"], "is not a date"),
        (["--sample", "btc-usdt", "--start", "2023-02-01", "--end", "2023-01-01"], "not before"),
        (["--symbols", "BTC/USDT"], "no stored 5m candles"),
        (["--sample", "btc-usdt", "--symbols", "BTCUSDT"], "not a symbol"),
        (["--sample", "btc-usdt", "--symbols", "ETH/USDT"], "has no ETH/USDT"),
        (["--sample", "btc-usdt", "--strategy", "nope"], "unknown strategy"),
        (["--sample", "btc-usdt", "--advisor", "maybe"], "--advisor must be"),
        (["--sample", "btc-usdt", "--risk", "bogus=1"], "unknown risk parameter"),
        (["--sample", "btc-usdt", "--risk", "max_open_positions=0"], "max_open_positions"),
        (["--sample", "btc-usdt", "--risk", "max_position_percent=150"], "from 0 to 100"),
        (["--sample", "btc-usdt", "--stake-amount", "-5"], "positive"),
        (["--sample", "btc-usdt", "--no-fee-edge"], "needs --stake-amount"),
        (["--sample", "nope"], "unknown sample set"),
        (["--data-file", "missing.csv"], "no such file"),
        (["--sample", "btc-usdt", "--start", "2030-01-01"], "no BTC/USDT candles"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["backtest", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")
    assert "Traceback" not in result.output


def test_help_explains_every_option() -> None:
    result = runner.invoke(app, ["backtest", "--help"])
    assert result.exit_code == 0
    for option in ("--strategy", "--symbols", "--start", "--end", "--advisor", "--export"):
        assert option in result.output


REAL = BTC_USDT_CSV  # the packaged real candles


def test_data_file_with_advisor_replay() -> None:
    # no recorded answers: the replayed advisor abstains and, advisory, lets the rules stand
    result = runner.invoke(
        app,
        [
            "backtest",
            "--data-file",
            str(REAL),
            "--symbols",
            "BTC/USDT",
            "--advisor",
            "replay",
            "--end",
            "2023-01-12",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "trades (closed)" in result.output


def test_risk_percentages_are_typed_in_percent() -> None:
    """--risk max_position_percent=20 means 20 % (stored 0.2), as risk_per_trade_percent=1
    means 1 %; regression: 20 was refused with "less than or equal to 1"."""
    from kmg_autotrader.backtest.cli_commands import parse_risk
    from kmg_autotrader.config import load_settings

    params = parse_risk(
        [
            "max_position_percent=20",
            "max_total_exposure_percent=50",
            "fee_safety_margin=0.2",
            "risk_per_trade_percent=1",
        ],
        load_settings(),
    )
    assert params.max_position_percent == 0.2
    assert params.max_total_exposure_percent == 0.5
    assert params.fee_safety_margin == 0.002
    assert params.risk_per_trade_percent == 1.0
