"""``kmg data import`` of a bad CSV as a user runs it (issue 20, finding 9): a real subprocess,
exit 2, one line naming the file and row, no traceback, and nothing stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kmg_autotrader.storage.candle_store import InvalidCandlesError

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = "1672531200000,16500.1,16510,16490,16505,1.5\n"
NEXT = "1672531500000,16505,16520,16500,16515,2.0\n"


def _import(csv: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kmg_autotrader",
            "data",
            "import",
            str(csv),
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "5m",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DATA_DIR": str(data_dir), "COLUMNS": "250"},
        cwd=csv.parent,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "stored" not in result.stdout and "imported" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _nothing_stored(data_dir: Path) -> None:
    stored = [p for p in data_dir.rglob("*") if p.suffix == ".parquet" or "candles" in p.parts]
    assert stored == []


BAD_ROWS = {
    # name: (second data row, words the error line must hold)
    "1e300-prices": ("1672531500000,1e300,1e300,1e300,1e300,2.0", ["row 2", "price above"]),
    "1e300-high-only": ("1672531500000,16505,1e300,16500,16515,2.0", ["row 2", "price above"]),
    "tiny-prices": ("1672531500000,1e-300,1e-300,1e-300,1e-300,2.0", ["row 2", "price below"]),
    "absurd-volume": ("1672531500000,16505,16520,16500,16515,1e30", ["row 2", "volume above"]),
    "infinite": ("1672531500000,16505,inf,16500,16515,2.0", ["row 2", "non-numeric"]),
    "nan": ("1672531500000,16505,nan,16500,16515,2.0", ["row 2", "not a number"]),
    "zero": ("1672531500000,0,16520,0,16515,2.0", ["row 2", "not positive"]),
    "negative": ("1672531500000,-16505,16520,-16500,16515,2.0", ["row 2", "not positive"]),
    "high-below-low": ("1672531500000,16505,16400,16500,16450,2.0", ["row 2", "high is below"]),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_implausible_row_is_refused_naming_it(case: str, tmp_path: Path) -> None:
    row, words = BAD_ROWS[case]
    csv = tmp_path / "btc.csv"
    csv.write_text(HEADER + GOOD + row + "\n")
    data_dir = tmp_path / "data"
    line = _one_line(_import(csv, data_dir))
    assert str(csv) in line and "nothing was imported" in line
    for word in words:
        assert word in line, line
    _nothing_stored(data_dir)


@pytest.mark.parametrize(
    "content", [HEADER, HEADER.strip(), ""], ids=["header-only", "header-no-newline", "empty"]
)
def test_file_without_candles_is_refused(content: str, tmp_path: Path) -> None:
    csv = tmp_path / "btc.csv"
    csv.write_text(content)
    data_dir = tmp_path / "data"
    line = _one_line(_import(csv, data_dir))
    assert str(csv) in line and "nothing was imported" in line
    _nothing_stored(data_dir)


def test_plausible_file_still_imports(tmp_path: Path) -> None:
    csv = tmp_path / "btc.csv"
    csv.write_text(HEADER + GOOD + NEXT)
    result = _import(csv, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "imported 2" in result.stdout


def test_bounds_leave_real_extremes_alone() -> None:
    from kmg_autotrader.collector.importer import MAX_PRICE, MIN_PRICE, check_plausible

    # BTC priced in VND (~2.5e9) and a meme coin priced in BTC (~1e-10) are real markets
    frame = pd.DataFrame(
        {
            "timestamp": [1, 2],
            "open": [2.5e9, 1e-10],
            "high": [2.6e9, 1.1e-10],
            "low": [2.4e9, 0.9e-10],
            "close": [2.5e9, 1e-10],
            "volume": [3.0, 1e13],
        }
    )
    check_plausible(frame, "real")
    assert MIN_PRICE < 1e-10 and MAX_PRICE > 2.6e9


def test_read_candle_file_refuses_without_writing(tmp_path: Path) -> None:
    from kmg_autotrader.collector.importer import ImportFormatError, read_candle_file

    header_only = tmp_path / "h.csv"
    header_only.write_text(HEADER)
    with pytest.raises(ImportFormatError, match="no candles"):
        read_candle_file(header_only, symbol="BTC/USDT", timeframe="5m")
    absurd = tmp_path / "a.csv"
    absurd.write_text(HEADER + GOOD + BAD_ROWS["1e300-prices"][0] + "\n")
    with pytest.raises(InvalidCandlesError, match="row 2") as info:
        read_candle_file(absurd, symbol="BTC/USDT", timeframe="5m")
    assert info.value.row == 1
