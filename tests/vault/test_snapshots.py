"""Snapshots: atomic writes, latest.json, retention, crash leftovers."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.vault import SnapshotWriter, load_latest
from kmg_autotrader.vault.snapshots import snapshot_name

T0 = 1_764_000_000_123  # 2025-11-24T16:00:00.123Z


def state(n: int) -> dict[str, object]:
    return {
        "metadata": {"version": "0.1.0", "n": n},
        "account": {"equity": 10_000 + n},
        "risk": {"max_position_percent": 0.2},
        "positions": [{"symbol": "BTC/USDT", "amount": "0.1"}] * (n % 3),
        "performance": {"pnl": n * 1.5},
        "health": {"feed_status": "websocket"},
    }


def test_write_and_load_latest(tmp_path: Path) -> None:
    writer = SnapshotWriter(tmp_path, clock=SimulatedClock(T0))
    path = writer.write(state(1))
    assert path == tmp_path / "snapshots" / "snapshot-20251124T160000123Z.json"
    stored = json.loads(path.read_text())
    assert stored["account"] == {"equity": 10_001}
    assert stored["snapshot"] == {
        "schema_version": 1,
        "ts": T0,
        "time": "2025-11-24T16:00:00Z",
    }
    assert load_latest(tmp_path) == stored
    assert (tmp_path / "snapshots" / "latest.json").read_bytes() == path.read_bytes()


def test_no_snapshot_yet(tmp_path: Path) -> None:
    assert load_latest(tmp_path) is None
    assert SnapshotWriter(tmp_path).snapshots() == []


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    clock = SimulatedClock(T0)
    writer = SnapshotWriter(tmp_path, keep=3, clock=clock)
    paths = []
    for n in range(6):
        clock.set(T0 + n * 60_000)
        paths.append(writer.write(state(n)))
    assert writer.snapshots() == paths[-3:]
    assert load_latest(tmp_path)["metadata"]["n"] == 5  # type: ignore[index]


def test_same_millisecond_does_not_overwrite(tmp_path: Path) -> None:
    writer = SnapshotWriter(tmp_path, clock=SimulatedClock(T0))
    first, second = writer.write(state(1)), writer.write(state(2))
    assert first != second
    assert second.name == snapshot_name(T0 + 1)
    assert json.loads(first.read_text())["metadata"]["n"] == 1


def test_failed_write_leaves_the_previous_files_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimulatedClock(T0)
    writer = SnapshotWriter(tmp_path, clock=clock)
    writer.write(state(1))
    before = (tmp_path / "snapshots" / "latest.json").read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    clock.set(T0 + 1000)
    with pytest.raises(OSError):
        writer.write(state(2))
    monkeypatch.undo()
    assert (tmp_path / "snapshots" / "latest.json").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
        "latest.json",
        snapshot_name(T0),
    ]  # no temp file left behind


def test_readers_never_see_a_partial_latest(tmp_path: Path) -> None:
    writer = SnapshotWriter(tmp_path, keep=5)
    writer.write(state(0))
    stop = threading.Event()
    seen: list[int] = []
    errors: list[Exception] = []

    def read_loop() -> None:
        while not stop.is_set():
            try:
                latest = load_latest(tmp_path)
                assert latest is not None
                seen.append(int(latest["metadata"]["n"]))
            except Exception as exc:
                errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    big = state(0)
    big["padding"] = "z" * 200_000  # large enough that a non-atomic write would be caught
    for n in range(1, 40):
        big["metadata"] = {"n": n}
        writer.write(big)
    stop.set()
    reader.join()
    assert errors == []
    assert seen and seen == sorted(seen)
    assert len(writer.snapshots()) == 5


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    writer = SnapshotWriter(tmp_path, clock=SimulatedClock(T0))
    folder = tmp_path / "snapshots"
    folder.mkdir()
    stale = folder / ".latest.json.abc.tmp"
    fresh = folder / ".latest.json.def.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    writer.write(state(1))
    assert not stale.exists()
    assert fresh.exists()  # may belong to a write in progress


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SnapshotWriter(tmp_path, keep=0)
