"""Candle store segments: appends never touch the main file, reads merge, compaction folds in.

Files only (no database). Crash and multi-process cases are in test_candle_store_processes.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from kmg_autotrader.storage import candle_compactor
from kmg_autotrader.storage.candle_segments import list_segments
from kmg_autotrader.storage.candle_store import (
    CandleStore,
    CorruptCandleFileError,
    merge_frames,
)
from tests.fakes.fake_exchange import random_walk_candles

T0 = 1_672_531_200_000
M5 = 300_000
SERIES = ("binance", "BTC/USDT", "5m")


def candles(start: int, count: int, level: float) -> pd.DataFrame:
    """``count`` 5m candles from slot ``start`` whose prices all sit around ``level``."""
    ts = T0 + (start + np.arange(count, dtype="int64")) * M5
    close = level + np.arange(count) * 0.01
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.full(count, 2.0),
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    return CandleStore(tmp_path, compact_after=None)


def pending(store: CandleStore) -> int:
    return store.pending_segments(*SERIES)


def test_append_neither_reads_nor_rewrites_the_main_file(
    store: CandleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost of an append is independent of the history: the main file is not touched."""
    history = random_walk_candles(T0, 5_000, M5)
    store.write_all(*SERIES, history)
    main = store.path_for(*SERIES)
    before = (main.stat().st_ino, main.stat().st_mtime_ns, main.read_bytes())

    def no_full_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("append read the stored history")

    monkeypatch.setattr(pq, "read_table", no_full_read)
    monkeypatch.setattr(pd, "read_parquet", no_full_read)
    for i in range(3):
        row = random_walk_candles(T0 + (5_000 + i) * M5, 1, M5, seed=i)
        assert store.append(*SERIES, row) == 1
    monkeypatch.undo()
    assert (main.stat().st_ino, main.stat().st_mtime_ns, main.read_bytes()) == before
    assert pending(store) == 3
    got = store.read(*SERIES)
    assert len(got) == 5_003 and got["timestamp"].is_monotonic_increasing
    assert store.last_timestamp(*SERIES) == T0 + 5_002 * M5


def test_newer_rows_win_across_main_and_segments_like_sequential_merges(
    store: CandleStore,
) -> None:
    """Random overlapping appends, with compactions in between, read back exactly like
    merging each batch in turn (today's semantics); ``append`` counts new timestamps."""
    rng = np.random.default_rng(7)
    expected = store.read(*SERIES)
    for step in range(40):
        start, count = int(rng.integers(0, 300)), int(rng.integers(1, 40))
        batch = candles(start, count, level=100.0 + step)
        new_ts = ~np.isin(batch["timestamp"], expected["timestamp"])
        assert store.append(*SERIES, batch) == int(new_ts.sum())
        expected = merge_frames(expected, batch)
        if step % 9 == 8:
            store.compact(*SERIES)
            assert pending(store) == 0
        got = store.read(*SERIES)
        pd.testing.assert_frame_equal(got, expected)
        lo, hi = T0 + 50 * M5, T0 + 120 * M5
        window = expected[(expected["timestamp"] >= lo) & (expected["timestamp"] < hi)]
        pd.testing.assert_frame_equal(
            store.read(*SERIES, start=lo, end=hi), window.reset_index(drop=True)
        )
    np.testing.assert_array_equal(store.read_timestamps(*SERIES), expected["timestamp"])


def test_compaction_folds_segments_in_atomically_and_marks_them(store: CandleStore) -> None:
    store.append(*SERIES, candles(0, 10, 100.0))
    for i in range(5):
        store.append(*SERIES, candles(8 + i, 3, 200.0 + i))
    assert pending(store) == 5
    before = store.read(*SERIES)
    assert store.compact(*SERIES) == 5
    main = store.path_for(*SERIES)
    assert pq.read_schema(main).metadata[b"kmg.through"] == b"5"
    assert sorted(p.name for p in main.parent.iterdir()) == ["5m.parquet", "5m.parquet.lock"]
    pd.testing.assert_frame_equal(store.read(*SERIES), before)
    assert store.compact(*SERIES) == 0
    # the next segment continues the sequence, so it is not mistaken for a folded one
    store.append(*SERIES, candles(20, 1, 300.0))
    assert [s.seq for s in list_segments(main)] == [6]
    assert len(store.read(*SERIES)) == 16


def test_leftover_segments_of_an_interrupted_compaction_are_ignored(
    store: CandleStore, tmp_path: Path
) -> None:
    """A compaction killed after replacing the main file leaves folded segments behind."""
    store.append(*SERIES, candles(0, 10, 100.0))
    store.append(*SERIES, candles(5, 10, 200.0))
    main = store.path_for(*SERIES)
    [seg] = list_segments(main)
    kept = tmp_path / "kept.arrow"
    shutil.copy(seg.path, kept)
    store.compact(*SERIES)
    store.write_all(*SERIES, candles(0, 4, 50.0))  # replaces everything, segments included
    shutil.copy(kept, seg.path)  # as if the clean-up had not happened
    got = store.read(*SERIES)
    pd.testing.assert_frame_equal(got, candles(0, 4, 50.0))
    assert store.append(*SERIES, candles(4, 1, 60.0)) == 1
    assert not seg.path.exists()  # the append cleared it up
    assert len(store.read(*SERIES)) == 5


def test_write_all_replaces_pending_segments(store: CandleStore) -> None:
    store.append(*SERIES, candles(0, 5, 100.0))
    store.append(*SERIES, candles(5, 5, 100.0))
    store.write_all(*SERIES, candles(2, 2, 70.0))
    assert pending(store) == 0
    pd.testing.assert_frame_equal(store.read(*SERIES), candles(2, 2, 70.0))


def test_listing_and_timestamps_include_pending_segments(store: CandleStore) -> None:
    store.append(*SERIES, candles(0, 10, 100.0))
    store.append(*SERIES, candles(12, 3, 100.0))  # leaves a gap of two candles
    [info] = store.list_series()
    assert (info.count, info.first, info.last) == (13, T0, T0 + 14 * M5)
    assert [(g.start, g.missing) for g in info.gaps] == [(T0 + 10 * M5, 2)]
    assert store.read_timestamps(*SERIES).size == 13
    assert store.exists(*SERIES)


def test_old_main_file_without_watermark_takes_segments(store: CandleStore) -> None:
    """A main file written before segments existed (no kmg.through) still works."""
    main = store.path_for(*SERIES)
    main.parent.mkdir(parents=True)
    candles(0, 20, 100.0).to_parquet(main)
    assert store.append(*SERIES, candles(19, 3, 300.0)) == 2
    got = store.read(*SERIES)
    assert len(got) == 22 and got["close"].iat[19] == 300.0
    store.compact(*SERIES)
    assert len(store.read(*SERIES)) == 22


def test_empty_main_file_then_append(store: CandleStore) -> None:
    store.write_all(*SERIES, candles(0, 0, 1.0))
    assert store.append(*SERIES, candles(0, 2, 100.0)) == 2
    assert len(store.read(*SERIES)) == 2


def _write_ipc(path: Path, frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def test_corrupt_segments_are_named_and_left_untouched(store: CandleStore) -> None:
    store.append(*SERIES, candles(0, 10, 100.0))
    store.append(*SERIES, candles(10, 2, 100.0))
    main = store.path_for(*SERIES)
    [seg] = list_segments(main)
    snapshot = {p.name: p.read_bytes() for p in main.parent.iterdir()}

    seg.path.write_bytes(b"ARROW1 not really")
    with pytest.raises(CorruptCandleFileError, match=seg.name):
        store.read(*SERIES)
    with pytest.raises(CorruptCandleFileError, match=seg.name):
        store.compact(*SERIES)

    bad = candles(10, 2, 100.0)
    bad.loc[1, "high"] = bad.loc[1, "low"] - 1
    _write_ipc(seg.path, bad)
    with pytest.raises(CorruptCandleFileError, match=r"row 2.*high is below"):
        store.read(*SERIES)

    _write_ipc(seg.path, candles(10, 3, 100.0))  # three rows, but its name says two
    with pytest.raises(CorruptCandleFileError, match="do not match its name"):
        store.read(*SERIES)

    seg.path.write_bytes(snapshot[seg.name])
    assert {p.name: p.read_bytes() for p in main.parent.iterdir()} == snapshot
    assert len(store.read(*SERIES)) == 12


def test_corrupt_main_file_refuses_appends_and_is_not_overwritten(store: CandleStore) -> None:
    store.append(*SERIES, candles(0, 10, 100.0))
    main = store.path_for(*SERIES)
    main.write_bytes(b"PAR1 broken")
    with pytest.raises(CorruptCandleFileError, match=str(main)):
        store.append(*SERIES, candles(10, 1, 100.0))
    with pytest.raises(CorruptCandleFileError):
        store.compact(*SERIES)
    assert main.read_bytes() == b"PAR1 broken" and list_segments(main) == []


def test_background_compaction_after_the_threshold(tmp_path: Path) -> None:
    store = CandleStore(tmp_path, compact_after=3, compact_delay_s=60.0)
    store.append(*SERIES, candles(0, 5, 100.0))  # creates the main file
    for i in range(3):
        store.append(*SERIES, candles(5 + i, 1, 100.0))
    assert pending(store) == 3  # scheduled, waiting for its delay
    assert candle_compactor.drain(timeout=10.0)  # what happens at interpreter exit
    assert pending(store) == 0
    assert len(store.read(*SERIES)) == 8


def test_compactor_runs_each_waiting_job_once() -> None:
    comp = candle_compactor.Compactor()
    calls: list[str] = []
    comp.schedule("a", lambda: calls.append("a"), delay=0.0)
    comp.schedule("b", lambda: calls.append("b"), delay=30.0)
    comp.schedule("b", lambda: calls.append("b-again"), delay=0.0)  # already waiting
    comp.schedule("c", lambda: 1 / 0, delay=0.0)  # a failing job does not stop the worker
    assert comp.drain(timeout=5.0)
    assert sorted(calls) == ["a", "b"]


def test_a_failed_segment_write_leaves_nothing(
    store: CandleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append(*SERIES, candles(0, 10, 100.0))
    main = store.path_for(*SERIES)

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.append(*SERIES, candles(10, 1, 100.0))
    monkeypatch.undo()
    assert sorted(p.name for p in main.parent.iterdir()) == ["5m.parquet", "5m.parquet.lock"]
    assert len(store.read(*SERIES)) == 10
