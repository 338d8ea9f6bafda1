"""Start-up cost guard: the CLI and the backtester import only what they use.

Each check runs a fresh interpreter (this process has long imported everything) and lists the
heavy third-party packages that ended up in ``sys.modules``. A module-level import of the bot,
the database, the web app or the exchange adapter in a command module, or an eager re-export in
a package ``__init__``, makes these fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kmg_autotrader

#: the source tree under test, so the child imports this code even from another directory
SRC = str(Path(kmg_autotrader.__file__).resolve().parents[1])
#: loaded by the commands that need them, never by ``import kmg_autotrader.cli`` or ``--help``
CLI_LAZY = (
    "aiohttp",
    "alembic",
    "apprise",
    "ccxt",
    "fastapi",
    "jinja2",
    "numpy",
    "openai",
    "pandas",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)

#: the backtester needs pandas and numpy, but no exchange, database, web app, LLM or alerts
BACKTEST_LAZY = (
    "aiohttp",
    "alembic",
    "apprise",
    "ccxt",
    "fastapi",
    "openai",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)

_REPORT = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def _modules_after(code: str) -> set[str]:
    """Top-level package names in ``sys.modules`` after running ``code`` in a new interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{_REPORT}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    return {name.partition(".")[0] for name in json.loads(last_line)}


def _help(*args: str) -> str:
    argv = ["kmg", *args, "--help"]
    return (
        "import sys\nfrom kmg_autotrader.cli import main\n"
        f"sys.argv = {argv!r}\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code"
    )


def test_guard_sees_a_heavy_import() -> None:
    # the check itself works: a module that does load pandas is caught
    assert "pandas" in _modules_after("import kmg_autotrader.storage.candle_store")


@pytest.mark.parametrize(
    "code",
    [
        "import kmg_autotrader.cli",
        _help(),
        _help("backtest"),
        _help("download"),
        _help("web"),
        _help("paper", "reset"),
    ],
    ids=["import", "kmg --help", "backtest --help", "download --help", "web --help", "paper"],
)
def test_cli_start_up_imports_no_heavy_package(code: str) -> None:
    loaded = _modules_after(code)
    assert sorted(loaded & set(CLI_LAZY)) == []


def test_backtest_runner_needs_no_exchange_database_web_or_llm() -> None:
    loaded = _modules_after("import kmg_autotrader.backtest.runner")
    assert sorted(loaded & set(BACKTEST_LAZY)) == []


def test_loading_settings_does_not_import_ccxt() -> None:
    # the EXCHANGE check reads ccxt's exchange list from its source instead
    loaded = _modules_after("from kmg_autotrader.config import load_settings\nload_settings()")
    assert "ccxt" not in loaded
    # nor the signal engine: the settings read SignalParams, not the engine, pandas or TA-Lib
    assert sorted(loaded & {"pandas", "numpy", "talib"}) == []


def test_exchange_ids_read_from_source_are_ccxts_own() -> None:
    import ccxt

    from kmg_autotrader.config import _ccxt_exchange_ids_from_source, known_exchange_ids

    assert _ccxt_exchange_ids_from_source() == tuple(ccxt.exchanges)
    assert known_exchange_ids() == list(ccxt.exchanges)
