"""The CLI as a user runs it: a real subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kmg_autotrader

ROOT = Path(__file__).resolve().parents[2]


def _kmg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {}), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "kmg_autotrader", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_help_lists_every_command() -> None:
    result = _kmg("--help")
    assert result.returncode == 0
    for command in ("run", "demo", "backtest", "train", "web", "chat", "db", "config", "data"):
        assert command in result.stdout


def test_bad_settings_exit_2_with_one_line_each_and_no_traceback() -> None:
    result = _kmg(
        "config", "check", env={"MAX_POSITION_PERCENT": "7", "WEB_PORT": "-1", "EXCHANGE": "nope"}
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    bad_lines = [line for line in result.stderr.splitlines() if line.strip().startswith("- ")]
    assert len(bad_lines) == 3
    assert any("MAX_POSITION_PERCENT" in line for line in bad_lines)


def test_config_check_masks_secrets() -> None:
    result = _kmg("config", "check", env={"OPENAI_API_KEY": "sk-should-not-appear-123456"})
    assert result.returncode == 0, result.stderr
    assert "sk-should-not-appear" not in result.stdout + result.stderr
    assert "TRADING_MODE" in result.stdout and "paper" in result.stdout


def test_db_upgrade_and_current_on_sqlite(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "d")}
    assert _kmg("db", "upgrade", env=env).returncode == 0
    current = _kmg("db", "current", env=env)
    assert current.returncode == 0
    # the newest migration file is the head an upgraded database must be at
    versions = Path(kmg_autotrader.__file__).parent / "storage" / "migrations" / "versions"
    head = max(p.name.split("_")[0] for p in versions.glob("[0-9]*_*.py"))
    assert f"current:  {head}" in current.stdout
    assert f"head:     {head}" in current.stdout
    assert (tmp_path / "d" / "kmg.sqlite").exists()


def test_unknown_command_is_a_usage_error() -> None:
    result = _kmg("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_config_check_shows_each_risk_limit_with_its_source(tmp_path: Path) -> None:
    from kmg_autotrader.domain import Mode
    from kmg_autotrader.storage.database import open_database
    from kmg_autotrader.storage.repositories import Repositories

    env = {"DATA_DIR": str(tmp_path / "d"), "MAX_DRAWDOWN": "7", "COLUMNS": "250"}
    fresh = _kmg("config", "check", env=env)
    assert fresh.returncode == 0, fresh.stderr
    rows = _risk_rows(fresh.stdout)
    assert rows["max_drawdown_percent"] == ("7 %", ".env (MAX_DRAWDOWN)")
    assert rows["max_open_positions"] == ("3", "default")
    # every percentage in percent, whatever the unit it is stored in
    assert rows["max_position_percent"] == ("20 %", "default")
    assert rows["fee_safety_margin"] == ("0.1 %", "default")
    assert rows["slippage_bps"] == ("5 bps", "default")
    assert "no database yet" in fresh.stdout
    assert not (tmp_path / "d" / "kmg.sqlite").exists()  # a check creates nothing
    database = open_database(f"sqlite:///{tmp_path / 'd' / 'kmg.sqlite'}")
    repos = Repositories(database)
    params = {"max_drawdown_percent": 4.0, "max_open_positions": 2}
    repos.risk_params.add(Mode.LIVE, params, source="web:session")
    database.dispose()
    paper = _risk_rows(_kmg("config", "check", env=env).stdout)
    assert paper["max_drawdown_percent"] == ("7 %", ".env (MAX_DRAWDOWN)")  # a LIVE edit
    live = _kmg("config", "check", env={**env, "TRADING_MODE": "live"})
    assert "Risk limits in effect (LIVE)" in live.stdout
    value, source = _risk_rows(live.stdout)["max_drawdown_percent"]
    assert value == "4 %" and source.startswith("dashboard edit v1 at ")
    assert source.endswith("(overrides .env MAX_DRAWDOWN=7.0)")


def _risk_rows(stdout: str) -> dict[str, tuple[str, str]]:
    """The risk table of `kmg config check`: parameter → (value, source)."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 3 and cells[0] and cells[0].islower():
            rows[cells[0]] = (cells[1], cells[2])
    return rows
