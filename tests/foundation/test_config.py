"""Settings validation: defaults, bad values reported one line per variable, secrets masked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kmg_autotrader.config import ConfigError, Settings, load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.signals.params import SignalParams


def test_defaults_are_paper_sqlite_loopback(tmp_path: Path) -> None:
    settings = load_settings(None)
    assert settings.trading_mode is Mode.PAPER
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("kmg.sqlite")
    assert settings.web_host == "127.0.0.1" and settings.web_port == 8000
    assert settings.max_position_percent == 0.2
    assert settings.max_drawdown == 5.0
    assert settings.gpt_call_limit_per_hour == 10
    assert settings.timeframe == "5m" and settings.timeframe_ms == 300_000
    assert (settings.assistant_name, settings.user_name) == ("Zin", "jimmy")
    assert settings.web_is_loopback


def test_every_bad_variable_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_POSITION_PERCENT", "7")
    monkeypatch.setenv("WEB_PORT", "-1")
    monkeypatch.setenv("EXCHANGE", "not-an-exchange")
    monkeypatch.setenv("TRADING_MODE", "yolo")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    names = sorted(line.split(":")[0] for line in info.value.lines)
    assert names == ["EXCHANGE", "MAX_POSITION_PERCENT", "TRADING_MODE", "WEB_PORT"]


def test_env_file_is_read_and_symbols_split(tmp_path: Path) -> None:
    env = tmp_path / "custom.env"
    env.write_text("SYMBOLS=btc/usdt, eth/usdt ,SOL/USDT\nEXCHANGE=Kraken\nTIMEFRAME=1h\n")
    settings = load_settings(env)
    assert settings.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert settings.exchange == "kraken"
    assert settings.timeframe_ms == 3_600_000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYMBOLS", "BTCUSDT"),
        ("TIMEFRAME", "7m"),
        ("POSTGRES_URL", "mysql://x"),
        ("MAX_DRAWDOWN", "0"),
    ],
)
def test_single_bad_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert [line.split(":")[0] for line in info.value.lines] == [name]


def test_secrets_are_masked_and_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-1234567890")
    monkeypatch.setenv("POSTGRES_URL", "postgresql://kmg_user:hunter2pass@localhost/kmg")
    settings = load_settings(None)
    masked = settings.masked()
    assert masked["OPENAI_API_KEY"] == "****** (set)"
    assert "hunter2pass" not in str(masked) and "SECRET" not in repr(settings)
    assert settings.database_url.startswith("postgresql+psycopg://kmg_user:")
    monkeypatch.setenv("POSTGRES_URL", "mysql://kmg_user:hunter2pass@localhost/kmg")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert "hunter2pass" not in str(info.value)


def test_live_requirements_listed() -> None:
    settings = load_settings(None)
    missing = settings.live_requirements_missing()
    assert any("BINANCE_API_KEY" in line for line in missing)
    assert any("TRADING_MODE" in line for line in missing)


def test_signal_parameters_come_from_signal_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    env.write_text("SIGNAL_SMA_FAST=10\nSIGNAL_RSI_PERIOD=21\n")
    monkeypatch.setenv("SIGNAL_RSI_PERIOD", "9")  # the environment wins over .env
    params = load_settings(env).signal_params
    assert (params.sma_fast, params.rsi_period) == (10, 9)


def test_every_documented_setting_is_valid(tmp_path: Path) -> None:
    """`.env.example` with every commented default switched on must load unchanged."""
    example = Path(__file__).resolve().parents[2] / ".env.example"
    lines = []
    for line in example.read_text().splitlines():
        if line.startswith("# SIGNAL_"):
            line = line[2:].split("  #")[0]
        lines.append(line)
    env = tmp_path / "example.env"
    env.write_text("\n".join(lines))
    settings = load_settings(env)
    assert settings.trading_mode is Mode.PAPER
    assert settings.signal_params == type(settings.signal_params)()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [("SIGNAL_SMA_FAST", "60", "SIGNAL_"), ("SIGNAL_NOT_A_FIELD", "1", "SIGNAL_NOT_A_FIELD")],
)
def test_bad_signal_parameters(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.lines[0].startswith(expected)


@pytest.mark.parametrize("name", ["SIGNAL_FEE_SAFETY_MARGIN", "SIGNAL_SLIPPAGE_ALLOWANCE"])
def test_the_fee_gates_own_costs_are_gone_and_say_where_they_went(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "0")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.lines == [
        f"{name}: no longer a setting; the fee gate uses the risk limits' slippage_bps and "
        "fee_safety_margin (the dashboard's risk editor)"
    ]


def test_env_example_documents_every_setting() -> None:
    """A setting added to ``Settings`` must also be listed (and explained) in `.env.example`."""
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields if name != "signal_params"}
    assert sorted(fields - listed) == []
    signal_fields = {"SIGNAL_" + name.upper() for name in SignalParams.model_fields}
    assert sorted(signal_fields - listed) == []


def test_required_advisor_without_an_llm_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADVISOR_MODE", "required")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert "ADVISOR_MODE=required needs an LLM" in " ".join(info.value.lines)
    monkeypatch.setenv("LLM_PROVIDER", "local")
    assert load_settings(None).advisor_mode == "required"
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert load_settings(None).advisor_mode == "required"
