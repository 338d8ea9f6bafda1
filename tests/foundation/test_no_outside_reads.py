"""The repository carries every file its tests read (issue 19, item 2).

Two proofs, run with the suite everywhere (``.ci/run`` included):

* no code under tests/, src/, benchmarks/, scripts/ names the shared data folder or the
  workplace's absolute paths (a ``skipif(not path.exists())`` would otherwise hide a missing
  file as a skip);
* the guard of ``tests/conftest.py`` refuses every way a test could read a forbidden folder
  (open, pandas, listing, glob, a subprocess's arguments), so a test that still did would fail.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests import outside_reads
from tests.data import BTC_PAIRS_DIR, BTC_USDT_CSV, HERE, KRAKEN_ASSET_PAIRS, KRAKEN_SNAPSHOT

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "src", "benchmarks", "scripts")
CODE_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".yml", ".yaml"}
# built from parts so this file does not match itself
FORBIDDEN = [
    re.compile("/" + "work/"),
    re.compile("shared" + "/data"),
    re.compile(r"""["']shared["']\s*/"""),
    re.compile("KMG_" + "SHARED_DATA"),
]


def _code_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix in CODE_SUFFIXES and "__pycache__" not in path.parts:
                yield path
    yield ROOT / "main.py"
    yield ROOT / "pyproject.toml"
    yield ROOT / ".ci" / "run"


def test_no_code_names_a_folder_outside_the_repository() -> None:
    hits = []
    for path in _code_files():
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(pattern.search(line) for pattern in FORBIDDEN):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == []


def test_the_data_the_tests_read_is_in_the_repository() -> None:
    for path in (BTC_USDT_CSV, KRAKEN_SNAPSHOT, KRAKEN_ASSET_PAIRS, HERE / "PROVENANCE.md"):
        resolved = path.resolve()
        assert path.is_file(), path
        assert resolved.is_relative_to(ROOT / "src") or resolved.is_relative_to(ROOT / "tests")
    assert len(list(BTC_PAIRS_DIR.glob("*.feather"))) == 6
    documented = (HERE / "PROVENANCE.md").read_text()
    for path in (HERE / "kraken").iterdir():
        assert f"kraken/{path.name}" in documented, path.name


@pytest.fixture
def forbidden(tmp_path: Path) -> Iterator[Path]:
    """A stand-in for ``../shared``: a folder with a candle file, forbidden for this test."""
    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    (shared / "data" / "c.csv").write_text("timestamp,open\n1,2\n")
    guard = outside_reads.GUARD
    saved = guard.roots
    guard.configure([*outside_reads.default_roots(), shared])
    try:
        yield shared / "data" / "c.csv"
    finally:
        guard.roots = saved
        guard.violations.clear()  # these were on purpose


def test_the_default_forbidden_folder_is_the_shared_one_beside_the_checkout() -> None:
    assert outside_reads.default_roots()[0] == ROOT.parent / "shared"
    assert outside_reads.GUARD.active
    assert str(ROOT.parent / "shared") + os.sep in outside_reads.GUARD.roots


def test_the_guard_refuses_every_way_of_reading(forbidden: Path) -> None:
    readers = {
        "open": lambda: forbidden.read_text(),
        "pandas": lambda: pd.read_csv(forbidden),
        "relative": lambda: open(os.path.relpath(forbidden)).close(),
        "listdir": lambda: os.listdir(forbidden.parent),
        "glob": lambda: list(forbidden.parent.glob("*.csv")),
        "glob.glob": lambda: glob.glob(str(forbidden.parent / "*")),
        "subprocess": lambda: subprocess.run(
            [sys.executable, "-c", "pass", str(forbidden)], check=False
        ),
        "subprocess-option": lambda: subprocess.run(
            [sys.executable, "-c", "pass", f"--data-file={forbidden}"], check=False
        ),
    }
    for name, read in readers.items():
        with pytest.raises(outside_reads.OutsideReadError, match="tests/data"):
            read()
        assert outside_reads.GUARD.violations, name
        outside_reads.GUARD.violations.clear()
    # the repository's own files and temporary files stay readable
    assert BTC_USDT_CSV.read_text()[:9] == "timestamp"
    assert (forbidden.parent.parent.parent / "elsewhere.txt").write_text("ok") == 2
