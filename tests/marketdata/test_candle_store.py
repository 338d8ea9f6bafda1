"""Parquet candle store: append/dedupe, validation, corrupt files, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kmg_autotrader.storage.candle_store import (
    CandleStore,
    CorruptCandleFileError,
    InvalidCandlesError,
    find_gaps,
    first_invalid_row,
)
from tests.fakes.fake_exchange import random_walk_candles

T0 = 1_672_531_200_000
M5 = 300_000


def test_append_merges_dedupes_and_new_rows_win(store: CandleStore) -> None:
    first = random_walk_candles(T0, 100, M5)
    assert store.append("binance", "BTC/USDT", "5m", first) == 100
    overlap = random_walk_candles(T0 + 90 * M5, 20, M5, seed=9)
    assert store.append("binance", "BTC/USDT", "5m", overlap) == 10
    got = store.read("binance", "BTC/USDT", "5m")
    assert len(got) == 110 and got["timestamp"].is_monotonic_increasing
    assert got["close"].iat[95] == overlap["close"].iat[5]
    assert got.dtypes.astype(str).tolist() == ["int64"] + ["float64"] * 5
    path = store.path_for("binance", "BTC/USDT", "5m")
    assert path == store.root / "binance" / "BTC_USDT" / "5m.parquet"
    assert (
        store.read("binance", "BTC/USDT", "5m", start=T0 + 10 * M5, end=T0 + 20 * M5).shape[0] == 10
    )
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_invalid_candles_are_refused_and_nothing_written(store: CandleStore) -> None:
    bad = random_walk_candles(T0, 10, M5)
    bad.loc[4, "low"] = bad.loc[4, "high"] + 1
    with pytest.raises(InvalidCandlesError, match="row 5") as err:
        store.append("binance", "BTC/USDT", "5m", bad)
    assert err.value.row == 4
    assert not store.exists("binance", "BTC/USDT", "5m")


def test_corrupt_file_named_and_never_overwritten(store: CandleStore) -> None:
    store.append("binance", "BTC/USDT", "5m", random_walk_candles(T0, 10, M5))
    path = store.path_for("binance", "BTC/USDT", "5m")
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(CorruptCandleFileError, match=str(path)):
        store.read("binance", "BTC/USDT", "5m")
    with pytest.raises(CorruptCandleFileError):
        store.append("binance", "BTC/USDT", "5m", random_walk_candles(T0 + 10 * M5, 5, M5))
    assert path.read_bytes() == b"PAR1 this is not parquet"


def test_stored_file_with_broken_invariant_is_corrupt(store: CandleStore, tmp_path: Path) -> None:
    path = store.path_for("binance", "ETH/USDT", "5m")
    path.parent.mkdir(parents=True)
    frame = random_walk_candles(T0, 5, M5)
    frame.loc[3, "timestamp"] = frame.loc[2, "timestamp"]
    frame.to_parquet(path)
    with pytest.raises(CorruptCandleFileError, match="duplicate timestamp"):
        store.read("binance", "ETH/USDT", "5m")


def test_failed_write_leaves_old_file(store: CandleStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append("binance", "BTC/USDT", "5m", random_walk_candles(T0, 10, M5))
    path = store.path_for("binance", "BTC/USDT", "5m")
    before = path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.append("binance", "BTC/USDT", "5m", random_walk_candles(T0 + 10 * M5, 5, M5))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == ["5m.parquet"]


def test_gaps_and_listing(store: CandleStore) -> None:
    frame = random_walk_candles(T0, 50, M5).drop(index=[10, 11, 12, 30])
    gaps = find_gaps(frame["timestamp"], M5)
    assert [(g.start, g.missing) for g in gaps] == [(T0 + 10 * M5, 3), (T0 + 30 * M5, 1)]
    store.append("kraken", "BTC/USD", "5m", frame)
    [info] = store.list_series()
    assert (info.exchange, info.symbol, info.timeframe, info.count) == (
        "kraken",
        "BTC/USD",
        "5m",
        46,
    )
    assert info.gaps == tuple(gaps)
    assert find_gaps(np.array([T0]), M5) == [] and isinstance(pd.DataFrame(), pd.DataFrame)


BAD_VALUES = [np.nan, np.inf, -np.inf, 0.0, -1.0]


@pytest.mark.parametrize("column", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize("value", BAD_VALUES)
def test_every_bad_value_in_every_column_is_found_at_its_row(column: str, value: float) -> None:
    """The fused fast path never lets a bad row through, and the slow path names it."""
    frame = random_walk_candles(T0, 50, M5)
    if column == "volume" and value == 0.0:
        value = -0.5  # zero volume is a valid candle
    frame.loc[37, column] = value
    found = first_invalid_row(frame)
    assert found is not None and found[0] == 37, (column, value, found)


@pytest.mark.parametrize(
    ("timestamps", "row", "reason"),
    [
        ([0, M5, M5, 3 * M5], 2, "duplicate"),
        ([0, 2 * M5, M5, 3 * M5], 2, "out of order"),
        ([-M5, 0, M5, 2 * M5], 0, "negative"),
    ],
)
def test_bad_timestamps_are_found_at_their_row(
    timestamps: list[int], row: int, reason: str
) -> None:
    frame = random_walk_candles(T0, 4, M5)
    frame["timestamp"] = np.array(timestamps, dtype="int64")
    found = first_invalid_row(frame)
    assert found is not None and found[0] == row and reason in found[1]


def test_valid_candles_pass_including_flat_and_zero_volume() -> None:
    frame = random_walk_candles(T0, 50, M5)
    frame.loc[10, ["open", "high", "low", "close", "volume"]] = [5.0, 5.0, 5.0, 5.0, 0.0]
    assert first_invalid_row(frame) is None
