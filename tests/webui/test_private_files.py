"""Finding 11 of issue 20 (files): everything under DATA_DIR is the owner's only.

The database, the logs, the vault and the snapshots were created 0644 (the trading history,
readable by every user of the machine). Now the CLI runs with umask 077 and the database and
log file are created 0600 explicitly (library use too).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from loguru import logger

from kmg_autotrader.logging_setup import setup_logging
from kmg_autotrader.storage.database import Database
from tests.webui.process import SRC

DEMO = [sys.executable, "-m", "kmg_autotrader.cli", "demo"]


def _modes(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
    }


def test_a_demo_run_leaves_only_private_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATA_DIR", "API_TOKEN"))},
        "PYTHONPATH": str(SRC),
        "DATA_DIR": str(data_dir),
    }
    done = subprocess.run(
        [*DEMO, "--speed", "0", "--no-web", "--limit", "120"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modes = _modes(data_dir)
    kinds = {name.split("/")[0] for name in modes}
    assert {"demo.sqlite", "logs", "demo"} <= kinds  # the history is there
    assert (data_dir / "demo" / "vault").is_dir()  # the demo keeps its own vault
    loose = {
        name: f"{mode:o}"
        for name, mode in modes.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert loose == {}


def test_the_database_and_the_log_are_private_without_the_cli(tmp_path: Path) -> None:
    """In-process (umask 022 here): the explicit modes alone keep them private."""
    data_dir = tmp_path / "data"
    umask = os.umask(0o022)  # the usual umask, which made them 0644
    try:
        database = Database(f"sqlite:///{data_dir / 'kmg.sqlite'}")
        database.upgrade()
        log_file = setup_logging(data_dir=data_dir, console=False)
        logger.info("a line in the log file")
        database.dispose()
    finally:
        os.umask(umask)
    assert log_file is not None
    assert stat.S_IMODE((data_dir / "kmg.sqlite").stat().st_mode) == 0o600
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for wal in data_dir.glob("kmg.sqlite-*"):
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600, wal


def test_an_existing_readable_database_and_log_are_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "logs").mkdir(parents=True)
    old_db = data_dir / "kmg.sqlite"
    old_log = data_dir / "logs" / "kmg.log"
    for path in (old_db, old_log):
        path.touch()
        path.chmod(0o644)
    Database(f"sqlite:///{old_db}").dispose()
    setup_logging(data_dir=data_dir, console=False)
    assert stat.S_IMODE(old_db.stat().st_mode) == 0o600
    assert stat.S_IMODE(old_log.stat().st_mode) == 0o600


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    yield None
    setup_logging(console=False)  # no file sink left pointing into a removed tmp dir
