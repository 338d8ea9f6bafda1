"""Candle store across processes: a writer killed at any point, concurrent writers, readers.

Children are forked (cheap: no re-import) and killed with SIGKILL, the way a crash or the OOM
killer ends a bot. Files only (no database).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import portalocker
import pyarrow.parquet as pq
import pytest

from kmg_autotrader.storage.candle_segments import list_segments, stray_temp_files
from kmg_autotrader.storage.candle_store import CandleStore, merge_frames

T0 = 1_672_531_200_000
M5 = 300_000
SERIES = ("binance", "BTC/USDT", "5m")
FORK = mp.get_context("fork")


def candles(slots: list[int] | np.ndarray, level: float) -> pd.DataFrame:
    """One 5m candle per slot; a candle's prices identify who wrote it (``level``)."""
    slots = np.asarray(slots, dtype="int64")
    close = level + slots * 0.01
    return pd.DataFrame(
        {
            "timestamp": T0 + slots * M5,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.full(len(slots), 3.0),
        }
    )


def run_child(target: Callable[..., None], *args: Any) -> tuple[list[Any], int | None]:
    """Run ``target(conn, *args)`` in a forked child; return what it sent and its exit code."""
    receiver, sender = FORK.Pipe(duplex=False)
    child = FORK.Process(target=target, args=(sender, *args))
    child.start()
    sender.close()
    got: list[Any] = []
    while True:
        try:
            got.append(receiver.recv())
        except EOFError:
            break
    child.join(10)
    return got, child.exitcode


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def only_series_files(main: Path) -> list[str]:
    return sorted(p.name for p in main.parent.iterdir())


# ---- killed at a chosen point ------------------------------------------------------------------

KILL_POINTS = [
    "segment written, before its rename",
    "segment renamed, before append returns",
    "compaction: main file half written",
    "compaction: main file written, before its rename",
    "compaction: main file renamed, before any segment is deleted",
    "compaction: after deleting one segment",
]


def crash_child(conn: Connection, data_dir: str, point: str) -> None:
    """Append one candle or compact, and die (SIGKILL) at ``point``."""
    store = CandleStore(data_dir, compact_after=None)
    real_replace, real_unlink, real_write = os.replace, os.unlink, pq.write_table

    def replace(src: Any, dst: Any) -> None:
        is_segment = ".seg-" in str(dst)
        if is_segment and point == "segment written, before its rename":
            die()
        if not is_segment and point == "compaction: main file written, before its rename":
            die()
        real_replace(src, dst)
        if not is_segment and point.startswith("compaction: main file renamed"):
            die()

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        real_unlink(path, *args, **kwargs)
        if point == "compaction: after deleting one segment" and ".seg-" in str(path):
            die()

    def write_table(table: Any, where: Any, **kwargs: Any) -> None:
        real_write(table.slice(0, len(table) // 2), where, **kwargs)
        where.flush()
        die()

    os.replace, os.unlink = replace, unlink  # type: ignore[assignment]
    if point == "compaction: main file half written":
        pq.write_table = write_table
    if point.startswith("segment"):
        store.append(*SERIES, candles([40], 900.0))
        if point == "segment renamed, before append returns":
            die()
    else:
        store.compact(*SERIES)
    conn.send("finished without being killed")


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_writer_killed_at_any_point_loses_and_corrupts_nothing(
    tmp_path: Path, point: str
) -> None:
    store = CandleStore(tmp_path, compact_after=None)
    expected = candles(range(30), 100.0)
    store.append(*SERIES, expected)
    for i, (start, level) in enumerate([(25, 200.0), (28, 300.0), (33, 400.0)]):
        batch = candles(range(start, start + 6), level + i)
        store.append(*SERIES, batch)
        expected = merge_frames(expected, batch)
    main = store.path_for(*SERIES)

    said, code = run_child(crash_child, str(tmp_path), point)
    assert said == [] and code == -signal.SIGKILL, (said, code)

    got = store.read(*SERIES)
    if point == "segment renamed, before append returns":
        expected = merge_frames(expected, candles([40], 900.0))  # it was stored, just not acked
    pd.testing.assert_frame_equal(got, expected)
    # the store keeps working and clears up what the killed writer left behind
    assert store.append(*SERIES, candles([41], 950.0)) == 1
    store.compact(*SERIES)
    assert only_series_files(main) == ["5m.parquet", "5m.parquet.lock"]
    pd.testing.assert_frame_equal(store.read(*SERIES), merge_frames(got, candles([41], 950.0)))


# ---- killed at a random moment while appending and compacting ----------------------------------


def busy_writer(conn: Connection, data_dir: str, first_slot: int) -> None:
    """Append one candle at a time forever (acking each), compacting often, in both threads."""
    store = CandleStore(data_dir, compact_after=3, compact_delay_s=0.0)
    slot = first_slot
    while True:
        store.append(*SERIES, candles([slot], 500.0))
        conn.send(slot)
        if slot % 5 == 0:
            store.compact(*SERIES)
        slot += 1


def test_a_busy_writer_killed_at_random_moments_keeps_every_acknowledged_candle(
    tmp_path: Path,
) -> None:
    rng = random.Random(18)
    store = CandleStore(tmp_path, compact_after=None)
    acked: list[int] = []
    for _ in range(5):
        receiver, sender = FORK.Pipe(duplex=False)
        first = acked[-1] + 1 if acked else 0
        child = FORK.Process(target=busy_writer, args=(sender, str(tmp_path), first))
        child.start()
        sender.close()
        time.sleep(rng.uniform(0.15, 0.4))
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
        while receiver.poll():
            try:
                acked.append(receiver.recv())
            except EOFError:
                break
        got = store.read(*SERIES)  # readable and valid (read validates every file)
        assert set(acked) <= set(got["timestamp"].sub(T0).floordiv(M5))
        pd.testing.assert_frame_equal(
            got[got["timestamp"] <= T0 + acked[-1] * M5], candles(acked, 500.0)
        )
    assert len(acked) > 20  # the writer did real work between kills
    store.compact(*SERIES)
    assert stray_temp_files(store.path_for(*SERIES)) == []


# ---- concurrent writers and readers ------------------------------------------------------------


def interleaved_writer(conn: Connection, data_dir: str, parity: int, count: int) -> None:
    """Append candles of even or odd slots, one by one, compacting in the background."""
    store = CandleStore(data_dir, compact_after=4, compact_delay_s=0.0)
    for i in range(count):
        slot = 2 * i + parity
        store.append(*SERIES, candles([slot], 1000.0 * (parity + 1)))
        if i % 10 == 9:
            store.compact(*SERIES)
    conn.send("done")


def test_two_writer_processes_and_a_reader_never_lose_or_mix_candles(tmp_path: Path) -> None:
    store = CandleStore(tmp_path, compact_after=None)
    store.append(*SERIES, candles([0], 1000.0))  # the even writer's first candle, again
    count = 60
    children = []
    for parity in (0, 1):
        receiver, sender = FORK.Pipe(duplex=False)
        child = FORK.Process(target=interleaved_writer, args=(sender, str(tmp_path), parity, count))
        child.start()
        sender.close()
        children.append((child, receiver))
    seen = 0
    reads = 0
    while any(child.is_alive() for child, _ in children) or reads == 0:
        got = store.read(*SERIES)  # a consistent view while both write and compact
        reads += 1
        assert len(got) >= seen  # nothing stored ever disappears
        seen = len(got)
    for child, receiver in children:
        child.join(10)
        assert child.exitcode == 0 and receiver.recv() == "done"
    got = store.read(*SERIES)
    expected = pd.concat(
        [candles(range(0, 2 * count, 2), 1000.0), candles(range(1, 2 * count, 2), 2000.0)]
    )
    expected = expected.sort_values("timestamp").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert reads > 5


def lock_holder(conn: Connection, lock_path: str, hold_s: float) -> None:
    with portalocker.Lock(lock_path, timeout=5):
        conn.send("locked")
        time.sleep(hold_s)


def test_appends_and_compactions_wait_for_a_writer_in_another_process(tmp_path: Path) -> None:
    store = CandleStore(tmp_path, compact_after=None)
    store.append(*SERIES, candles(range(10), 100.0))
    lock_path = str(store.path_for(*SERIES)) + ".lock"
    for action in (
        lambda: store.append(*SERIES, candles([10], 100.0)),
        lambda: store.compact(*SERIES),
    ):
        receiver, sender = FORK.Pipe(duplex=False)
        child = FORK.Process(target=lock_holder, args=(sender, lock_path, 0.5))
        child.start()
        sender.close()
        assert receiver.recv() == "locked"
        t0 = time.monotonic()
        action()
        waited = time.monotonic() - t0
        child.join(10)
        assert waited > 0.3, waited
    assert len(store.read(*SERIES)) == 11 and list_segments(store.path_for(*SERIES)) == []
