"""Parquet candle store: one file per exchange/symbol/timeframe under ``DATA_DIR/candles``.

Layout: ``DATA_DIR/candles/<exchange>/<BASE_QUOTE>/<timeframe>.parquet`` with columns
``timestamp`` (int64, UTC epoch ms, candle open time), ``open``, ``high``, ``low``, ``close``,
``volume`` (float64). Every write is validated, merged with what is stored (new rows win on the
same timestamp), and replaced atomically (temp file + ``os.replace``), under a file lock so a
live collector and a download never interleave. A file that cannot be read or fails validation
raises :class:`CorruptCandleFileError` naming it; it is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import portalocker
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")


def _use_jemalloc() -> None:
    """Prefer arrow's jemalloc pool: it returns freed memory to the OS promptly, so loading a
    year of ten symbols peaks ~30 MB lower than with the default mimalloc pool."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return  # the user chose a pool explicitly
    # a pyarrow build without jemalloc raises: then keep the default pool
    with contextlib.suppress(NotImplementedError, pa.ArrowException):
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_use_jemalloc()

_SCHEMA = pa.schema([("timestamp", pa.int64())] + [(name, pa.float64()) for name in COLUMNS[1:]])
_LOCK_TIMEOUT_S = 60.0


class CandleStoreError(Exception):
    """Base class for candle store errors."""


class InvalidCandlesError(CandleStoreError):
    """Candles that break an invariant; ``row`` is the 0-based position of the first bad row."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


class CorruptCandleFileError(CandleStoreError):
    """A stored parquet file that cannot be read or holds invalid candles."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"candle file {path} is corrupt: {reason}. It was left untouched; "
            "move it away (or delete it) and download again."
        )
        self.path = path


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing candles: ``start`` is the first missing open time, ``end`` the next present one."""

    start: int
    end: int
    missing: int

    def __str__(self) -> str:
        return f"{fmt_ms(self.start)} → {fmt_ms(self.end)} ({self.missing} missing)"


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """Summary of one stored series, for ``kmg data list``."""

    exchange: str
    symbol: str
    timeframe: str
    path: Path
    first: int | None
    last: int | None
    count: int
    gaps: tuple[Gap, ...]


def fmt_ms(ms: int) -> str:
    """UTC epoch ms as ``YYYY-MM-DD HH:MM`` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def empty_frame() -> pd.DataFrame:
    """An empty candle frame with the store's columns and dtypes."""
    return pd.DataFrame(
        {
            "timestamp": np.array([], dtype="int64"),
            **{c: np.array([], dtype="float64") for c in COLUMNS[1:]},
        }
    )


def normalize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Select the store's columns with the store's dtypes (raises on missing/non-numeric data)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidCandlesError(f"missing column(s): {', '.join(missing)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    ts = frame["timestamp"].to_numpy()
    if ts.dtype.kind == "f":
        if np.isnan(ts).any():
            row = int(np.flatnonzero(np.isnan(ts))[0])
            raise InvalidCandlesError(f"row {row + 1}: timestamp is empty", row)
        if (ts != np.floor(ts)).any():
            row = int(np.flatnonzero(ts != np.floor(ts))[0])
            raise InvalidCandlesError(f"row {row + 1}: timestamp {ts[row]} is not whole ms", row)
    elif ts.dtype.kind not in "iu":
        raise InvalidCandlesError("timestamp column is not numeric epoch milliseconds")
    out["timestamp"] = ts.astype("int64")
    for col in COLUMNS[1:]:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64")
        out[col] = values
    return out


def _frame_from_table(table: pa.Table) -> pd.DataFrame:
    """A frame from arrow without an extra copy when the file has the store's schema."""
    table = table.select(list(COLUMNS))
    if table.schema.equals(_SCHEMA, check_metadata=False):
        # split_blocks + self_destruct: arrow frees each column as pandas takes it over.
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        return frame
    return normalize_frame(table.to_pandas())


def _all_valid(
    ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> bool:
    """True when every row keeps every invariant, in one fused pass.

    NaN fails every comparison and infinities fail the bounds, so ``low > 0``,
    ``low <= min(open, close)``, ``high >= max(open, close)`` and ``high < inf`` together
    prove all four prices finite and positive; :func:`first_invalid_row` only does the slower
    row-locating work when this says no.
    """
    if ts[0] < 0 or not bool((np.diff(ts) > 0).all()):
        return False
    ok = (lo > 0) & (lo <= np.minimum(o, c)) & (h >= np.maximum(o, c)) & (h < np.inf)
    ok &= (v >= 0) & (v < np.inf)
    return bool(ok.all())


def first_invalid_row(frame: pd.DataFrame) -> tuple[int, str] | None:
    """The first row that breaks a candle invariant and why, or None when all rows are valid.

    Invariants: strictly increasing timestamps (so neither out of order nor duplicate), finite
    positive prices, ``high >= max(open, close)``, ``low <= min(open, close)``, ``volume >= 0``.
    """
    n = len(frame)
    if n == 0:
        return None
    ts = frame["timestamp"].to_numpy()
    o, h, lo, c, v = (frame[col].to_numpy() for col in COLUMNS[1:])
    if _all_valid(ts, o, h, lo, c, v):
        return None  # the common case, ~10x cheaper than locating a first bad row
    prices = np.column_stack([o, h, lo, c])
    problems: list[tuple[Any, str]] = [
        (~np.isfinite(prices).all(axis=1) | ~np.isfinite(v), "empty or non-numeric value"),
        ((prices <= 0).any(axis=1), "price is not positive"),
        (h < np.maximum(o, c), "high is below open or close"),
        (lo > np.minimum(o, c), "low is above open or close"),
        (v < 0, "volume is negative"),
        (ts < 0, "timestamp is negative"),
    ]
    step = np.empty(n, dtype=bool)
    step[0] = False
    diff = np.diff(ts)
    step[1:] = diff == 0
    problems.append((step.copy(), "duplicate timestamp"))
    step[1:] = diff < 0
    problems.append((step, "timestamp out of order (earlier than the row before)"))
    best: tuple[int, str] | None = None
    for mask, reason in problems:
        hits = np.flatnonzero(mask)
        if hits.size and (best is None or hits[0] < best[0]):
            best = (int(hits[0]), reason)
    return best


def validate_frame(frame: pd.DataFrame, source: str = "candles") -> None:
    """Raise :class:`InvalidCandlesError` naming the first bad row (1-based) of ``source``."""
    found = first_invalid_row(frame)
    if found is None:
        return
    row, reason = found
    ts = int(frame["timestamp"].to_numpy()[row])
    when = fmt_ms(ts) if ts >= 0 else str(ts)
    values = ", ".join(f"{c}={frame[c].iat[row]!r}" for c in COLUMNS[1:])
    raise InvalidCandlesError(
        f"{source}: row {row + 1} (timestamp {ts} = {when} UTC): {reason} [{values}]", row
    )


def find_gaps(timestamps: np.ndarray | pd.Series, timeframe_ms: int) -> list[Gap]:
    """Holes in a sorted series of candle open times spaced ``timeframe_ms`` apart."""
    ts = np.asarray(timestamps, dtype="int64")
    if ts.size < 2:
        return []
    diff = np.diff(ts)
    idx = np.flatnonzero(diff > timeframe_ms)
    return [
        Gap(
            start=int(ts[i] + timeframe_ms),
            end=int(ts[i + 1]),
            missing=int(diff[i] // timeframe_ms - 1),
        )
        for i in idx
    ]


def symbol_to_dirname(symbol: str) -> str:
    """``BTC/USDT`` → ``BTC_USDT`` (also flattens ``:`` of derivative symbols)."""
    return symbol.replace("/", "_").replace(":", "_")


def merge_frames(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two candle frames sorted by time; on equal timestamps the row from ``new`` wins."""
    if old.empty:
        merged = new
    elif new.empty:
        merged = old
    elif int(new["timestamp"].to_numpy()[0]) > int(old["timestamp"].to_numpy()[-1]):
        merged = pd.concat([old, new], ignore_index=True)  # the common append: no sort needed
    else:
        merged = pd.concat([old, new], ignore_index=True)
        merged = merged.drop_duplicates("timestamp", keep="last")
        merged = merged.sort_values("timestamp", kind="stable")
    return merged.reset_index(drop=True)


class CandleStore:
    """Parquet files of candles under ``data_dir/candles``; see the module docstring."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir) / "candles"

    # ---- paths ---------------------------------------------------------------------------------

    def path_for(self, exchange: str, symbol: str, timeframe: str) -> Path:
        """Where the series lives (the file may not exist yet)."""
        return self.root / exchange.lower() / symbol_to_dirname(symbol) / f"{timeframe}.parquet"

    def exists(self, exchange: str, symbol: str, timeframe: str) -> bool:
        """True when a file is stored for the series."""
        return self.path_for(exchange, symbol, timeframe).is_file()

    # ---- reading -------------------------------------------------------------------------------

    def read(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start: int | None = None,
        end: int | None = None,
    ) -> pd.DataFrame:
        """Stored candles with ``start <= timestamp < end`` (both optional); empty if none."""
        path = self.path_for(exchange, symbol, timeframe)
        frame = self._read_path(path)
        if start is not None or end is not None:
            ts = frame["timestamp"].to_numpy()
            lo = 0 if start is None else int(np.searchsorted(ts, start, "left"))
            hi = len(ts) if end is None else int(np.searchsorted(ts, end, "left"))
            frame = frame.iloc[lo:hi].reset_index(drop=True)
        return frame

    def read_timestamps(self, exchange: str, symbol: str, timeframe: str) -> np.ndarray:
        """Only the timestamp column (cheap), as int64."""
        path = self.path_for(exchange, symbol, timeframe)
        if not path.is_file():
            return np.array([], dtype="int64")
        try:
            table = pq.read_table(path, columns=["timestamp"])
        except (OSError, pa.ArrowException) as exc:
            raise CorruptCandleFileError(path, str(exc)) from exc
        return table.column("timestamp").to_numpy().astype("int64", copy=False)

    def last_timestamp(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """Open time of the newest stored candle, or None when nothing is stored."""
        ts = self.read_timestamps(exchange, symbol, timeframe)
        return int(ts[-1]) if ts.size else None

    def _read_path(self, path: Path) -> pd.DataFrame:
        if not path.is_file():
            return empty_frame()
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise CorruptCandleFileError(path, f"cannot read parquet ({exc})") from exc
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise CorruptCandleFileError(path, f"missing column(s) {', '.join(missing)}")
        try:
            frame = _frame_from_table(table)
            validate_frame(frame, str(path))
        except InvalidCandlesError as exc:
            raise CorruptCandleFileError(path, str(exc)) from exc
        return frame

    # ---- writing -------------------------------------------------------------------------------

    def append(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        candles: pd.DataFrame,
        *,
        source: str = "candles",
    ) -> int:
        """Validate ``candles``, merge them into the stored series and write it atomically.

        Returns the number of timestamps that were not stored before. Raises
        :class:`InvalidCandlesError` (nothing written) when ``candles`` is invalid and
        :class:`CorruptCandleFileError` when the stored file is.
        """
        new = normalize_frame(candles)
        validate_frame(new, source)
        if new.empty:
            return 0
        path = self.path_for(exchange, symbol, timeframe)
        path.parent.mkdir(parents=True, exist_ok=True)
        with portalocker.Lock(str(path) + ".lock", timeout=_LOCK_TIMEOUT_S):
            old = self._read_path(path)
            before = len(old)
            merged = merge_frames(old, new)
            validate_frame(merged, str(path))
            self._write_atomic(path, merged, exchange, symbol, timeframe)
        return len(merged) - before

    def write_all(self, exchange: str, symbol: str, timeframe: str, candles: pd.DataFrame) -> None:
        """Replace the whole series with ``candles`` (validated first, atomic)."""
        frame = normalize_frame(candles)
        validate_frame(frame)
        path = self.path_for(exchange, symbol, timeframe)
        path.parent.mkdir(parents=True, exist_ok=True)
        with portalocker.Lock(str(path) + ".lock", timeout=_LOCK_TIMEOUT_S):
            self._write_atomic(path, frame, exchange, symbol, timeframe)

    @staticmethod
    def _write_atomic(
        path: Path, frame: pd.DataFrame, exchange: str, symbol: str, timeframe: str
    ) -> None:
        table = pa.Table.from_pandas(frame, schema=_SCHEMA, preserve_index=False)
        # Metadata keeps the real symbol: a directory name like BTC_USDT is ambiguous.
        meta = {b"kmg.exchange": exchange.encode(), b"kmg.symbol": symbol.encode()}
        meta[b"kmg.timeframe"] = timeframe.encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                pq.write_table(table, handle, compression="zstd")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    # ---- listing -------------------------------------------------------------------------------

    def iter_paths(self) -> Iterator[Path]:
        """Every stored parquet file, sorted."""
        if not self.root.is_dir():
            return iter(())
        return iter(sorted(self.root.glob("*/*/*.parquet")))

    def info(self, path: Path) -> SeriesInfo:
        """Summary of one stored file (reads only the timestamps)."""
        from kmg_autotrader.config import timeframe_to_ms

        try:
            schema = pq.read_schema(path)
            table = pq.read_table(path, columns=["timestamp"])
        except (OSError, pa.ArrowException) as exc:
            raise CorruptCandleFileError(path, f"cannot read parquet ({exc})") from exc
        meta = schema.metadata or {}
        exchange = meta.get(b"kmg.exchange", path.parent.parent.name.encode()).decode()
        symbol = meta.get(b"kmg.symbol", path.parent.name.replace("_", "/", 1).encode()).decode()
        timeframe = meta.get(b"kmg.timeframe", path.stem.encode()).decode()
        ts = table.column("timestamp").to_numpy().astype("int64", copy=False)
        try:
            tf_ms = timeframe_to_ms(timeframe)
        except ValueError:
            tf_ms = 0
        gaps = find_gaps(ts, tf_ms) if tf_ms else []
        return SeriesInfo(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            path=path,
            first=int(ts[0]) if ts.size else None,
            last=int(ts[-1]) if ts.size else None,
            count=int(ts.size),
            gaps=tuple(gaps),
        )

    def list_series(self) -> list[SeriesInfo]:
        """Summaries of everything stored."""
        return [self.info(path) for path in self.iter_paths()]
