"""Vault JSONL: round trip, encoding, day files, torn-line tolerance and repair."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from kmg_autotrader.domain import Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.vault import SCHEMA_VERSION, VaultError, VaultKind, VaultReader, VaultWriter

DAY1 = 1_764_000_000_000  # 2025-11-24T16:00:00Z
DAY2 = DAY1 + 86_400_000


@dataclass
class Fill:
    symbol: str
    side: Side
    price: Decimal


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_round_trip_with_envelope(data_dir: Path) -> None:
    writer = VaultWriter(data_dir, clock=SimulatedClock(DAY1))
    stored = writer.append(VaultKind.TRADES, {"fill": Fill("BTC/USDT", Side.BUY, Decimal("0.1"))})
    assert stored == {
        "schema_version": SCHEMA_VERSION,
        "ts": DAY1,
        "kind": "trades",
        "data": {"fill": {"symbol": "BTC/USDT", "side": "buy", "price": "0.1"}},
    }
    path = data_dir / "vault" / "trades" / "2025-11-24.jsonl"
    assert path.read_bytes().count(b"\n") == 1
    assert list(VaultReader(data_dir).read("trades")) == [stored]


def test_records_go_to_the_utc_day_of_their_timestamp(data_dir: Path) -> None:
    writer = VaultWriter(data_dir, fsync=False)
    writer.append("anomalies", {"n": 1}, ts_ms=DAY1)
    writer.append("anomalies", {"n": 2}, ts_ms=DAY2)
    writer.append("anomalies", {"n": 3}, ts_ms=DAY1 + 1)
    reader = VaultReader(data_dir)
    assert reader.days("anomalies") == ["2025-11-24", "2025-11-25"]
    assert [r["data"]["n"] for r in reader.read("anomalies")] == [1, 3, 2]
    assert [r["data"]["n"] for r in reader.read("anomalies", date(2025, 11, 25))] == [2]
    assert [r["data"]["n"] for r in reader.read("anomalies", "2025-11-24")] == [1, 3]
    assert list(reader.read("anomalies", "2020-01-01")) == []
    assert list(reader.read("decisions")) == []
    assert reader.kinds() == ["anomalies"]


def test_values_that_are_not_json(data_dir: Path) -> None:
    writer = VaultWriter(data_dir, fsync=False)
    stored = writer.append("decisions", {"x": float("nan"), "y": [1.5, float("inf")], "t": "a\nb"})
    assert stored["data"] == {"x": None, "y": [1.5, None], "t": "a\nb"}
    with pytest.raises(VaultError):
        writer.append("decisions", {"bad": object()})
    for kind in ("../escape", "Trades", "", "a/b"):
        with pytest.raises(VaultError):
            writer.append(kind, {})
    # the newline inside a string stays escaped: still one line per record
    lines = (data_dir / "vault" / "decisions").glob("*.jsonl")
    assert [p.read_bytes().count(b"\n") for p in lines] == [1]


def test_torn_final_line_is_skipped_and_the_next_append_repairs(data_dir: Path) -> None:
    writer = VaultWriter(data_dir, clock=SimulatedClock(DAY1))
    writer.append("trades", {"n": 1})
    path = writer.path_for("trades", "2025-11-24")
    with open(path, "ab") as handle:  # what a crash mid-write leaves behind
        handle.write(b'{"schema_version":1,"ts":17640000')

    reader = VaultReader(data_dir)
    assert [r["data"]["n"] for r in reader.read("trades")] == [1]
    assert [(p.line, p.reason) for p in reader.problems] == [(2, "torn final line")]

    writer.append("trades", {"n": 2})
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == b'{"schema_version":1,"ts":17640000'  # fragment isolated on its line
    assert json.loads(lines[2])["data"] == {"n": 2}

    reader = VaultReader(data_dir)
    assert [r["data"]["n"] for r in reader.read("trades")] == [1, 2]
    assert [(p.line, p.reason) for p in reader.problems] == [(2, "invalid JSON")]


def test_garbage_lines_are_reported_not_fatal(data_dir: Path) -> None:
    writer = VaultWriter(data_dir, clock=SimulatedClock(DAY1), fsync=False)
    path = writer.path_for("anomalies", "2025-11-24")
    path.parent.mkdir(parents=True)
    path.write_bytes(b'[1,2]\n\n\xff\xfe\n{"no_data": 1}\n')
    writer.append("anomalies", {"ok": True})
    reader = VaultReader(data_dir)
    assert [r["data"] for r in reader.read("anomalies")] == [{"ok": True}]
    assert [p.reason for p in reader.problems] == ["not a record", "invalid JSON", "not a record"]


def test_append_after_an_empty_file(data_dir: Path) -> None:
    writer = VaultWriter(data_dir, clock=SimulatedClock(DAY1), fsync=False)
    path = writer.path_for("trades", "2025-11-24")
    path.parent.mkdir(parents=True)
    path.touch()
    writer.append("trades", {"n": 1})
    assert path.read_bytes().startswith(b"{")


def test_try_append_never_raises(data_dir: Path) -> None:
    writer = VaultWriter(data_dir, fsync=False)
    assert writer.try_append("trades", {"ok": 1})
    assert not writer.try_append("trades", {"bad": object()})
    assert not writer.try_append("../x", {})
    (data_dir / "vault" / "anomalies").write_text("a file where a folder should be")
    assert not writer.try_append("anomalies", {"n": 1})
