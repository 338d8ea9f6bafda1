"""The CLI as a user runs it: a real subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    assert "current:  0001" in current.stdout
    assert (tmp_path / "d" / "kmg.sqlite").exists()


def test_unknown_command_is_a_usage_error() -> None:
    result = _kmg("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
