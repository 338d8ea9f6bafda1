"""Parquet candle store: one series per exchange/symbol/timeframe under ``DATA_DIR/candles``.

Layout: ``DATA_DIR/candles/<exchange>/<BASE_QUOTE>/<timeframe>.parquet`` (the main file) with
columns ``timestamp`` (int64, UTC epoch ms, candle open time), ``open``, ``high``, ``low``,
``close``, ``volume`` (float64), plus, beside it, append-only segment files
(:mod:`~kmg_autotrader.storage.candle_segments`) holding what was appended since the main file
was last rewritten. Every write is validated. An append writes one new segment, so a live
candle costs the same whatever the history; :meth:`CandleStore.read` merges the main file and
its segments (a newer row wins on the same timestamp). Segments are folded into the main file
by a compaction (after ``compact_after`` of them, in a background thread; by
:meth:`CandleStore.compact`; by :meth:`CandleStore.write_all`), which replaces the main file
atomically (temp file + ``os.replace``). Every write holds a per-series file lock, so a live
collector and a download never interleave; reads take no lock and retry when a compaction
completed while they read. A crash at any point loses no stored candle. A file that cannot be
read or fails validation raises :class:`CorruptCandleFileError` naming it; it is never
overwritten.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
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
from loguru import logger

from kmg_autotrader.storage.candle_compactor import compactor
from kmg_autotrader.storage.candle_segments import (
    Segment,
    fsync_dir,
    list_segments,
    read_segment,
    stray_temp_files,
    write_segment,
)

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
    return pd.DataFrame(_normalized_columns(frame), index=pd.RangeIndex(len(frame)))


def _normalized_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """:func:`normalize_frame`'s columns as numpy arrays (the live append needs no frame)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidCandlesError(f"missing column(s): {', '.join(missing)}")
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
    columns: dict[str, np.ndarray] = {"timestamp": ts.astype("int64")}
    for col in COLUMNS[1:]:
        series = frame[col]
        if series.dtype != np.float64:
            series = pd.to_numeric(series, errors="coerce")
        columns[col] = series.to_numpy(dtype="float64")
    return columns


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
    return bool(_rows_valid(o, h, lo, c, v).all())


def _rows_valid(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """Per row: finite positive prices, low/high around open/close, finite volume >= 0."""
    ok = (lo > 0) & (lo <= np.minimum(o, c)) & (h >= np.maximum(o, c)) & (h < np.inf)
    ok &= (v >= 0) & (v < np.inf)
    return ok


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


def _validate_columns(columns: dict[str, np.ndarray], source: str) -> None:
    """:func:`validate_frame` for normalized columns; a frame is built only to word an error."""
    ts = columns["timestamp"]
    if ts.size == 0 or _all_valid(ts, *(columns[c] for c in COLUMNS[1:])):
        return
    validate_frame(pd.DataFrame(columns), source)


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


# Pending segments of one series that make an append or read schedule a compaction: 64 closed
# 5m candles are ~5 h, and reading 64 tiny segments adds ~10 ms to a read.
COMPACT_AFTER = 64
# An append this large schedules a compaction at once (a download or an import, not a live feed).
_BULK_ROWS = 10_000
_COMPACT_DELAY_S = 1.0
_LOCK_POLL_S = 0.005  # portalocker polls a held lock; 0.25 s (its default) would stall appends
_SNAPSHOT_ATTEMPTS = 50
_THROUGH_KEY = b"kmg.through"
_RETRY_CORRUPT_S = 600.0
_corrupt_until: dict[Path, float] = {}  # series whose compaction found a corrupt file


@dataclass(frozen=True, slots=True)
class _Head:
    """What an append learns of the main file from its footer alone."""

    through: int
    rows: int
    last: int | None  # open time of its newest candle; None when empty or without statistics


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A consistent view of one series: the main file's table and the segments newer than it."""

    main: pa.Table | None
    segments: list[tuple[Segment, pa.Table]]
    pending: int  # every pending segment, including those a ranged read skipped


def _table(frame: pd.DataFrame) -> pa.Table:
    """A normalized candle frame as an arrow table with the store's schema."""
    return pa.Table.from_arrays([frame[c].to_numpy() for c in COLUMNS], schema=_SCHEMA)


def _stat_sig(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _through(meta: dict[bytes, bytes] | None, path: Path) -> int:
    raw = (meta or {}).get(_THROUGH_KEY, b"0")
    try:
        return int(raw)
    except ValueError:
        raise CorruptCandleFileError(path, f"bad {_THROUGH_KEY.decode()} value {raw!r}") from None


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _main_frame(table: pa.Table, path: Path) -> pd.DataFrame:
    """The main file's candles, validated (:class:`CorruptCandleFileError` when invalid)."""
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise CorruptCandleFileError(path, f"missing column(s) {', '.join(missing)}")
    try:
        frame = _frame_from_table(table)
        validate_frame(frame, str(path))
    except InvalidCandlesError as exc:
        raise CorruptCandleFileError(path, str(exc)) from exc
    return frame


def _segments_frame(segments: list[tuple[Segment, pa.Table]]) -> pd.DataFrame:
    """Every segment's rows, validated, as one frame in which a later segment wins."""
    tables = [table for _, table in segments]
    frame = pa.concat_tables(tables).to_pandas()
    ts = frame["timestamp"].to_numpy()
    o, h, lo, c, v = (frame[col].to_numpy() for col in COLUMNS[1:])
    ends = np.cumsum([t.num_rows for t in tables])
    starts = ends - np.array([t.num_rows for t in tables])
    step = np.diff(ts) > 0
    step[ends[:-1] - 1] = True  # a segment may overlap the one before: a later one wins
    names_ok = bool(
        (ts[starts] == [s.first for s, _ in segments]).all()
        and (ts[ends - 1] == [s.last for s, _ in segments]).all()
    )
    if not (names_ok and step.all() and (ts >= 0).all() and _rows_valid(o, h, lo, c, v).all()):
        for (segment, _), a, b in zip(segments, starts, ends, strict=True):
            part = frame.iloc[a:b].reset_index(drop=True)
            try:
                validate_frame(part, str(segment.path))
            except InvalidCandlesError as exc:
                raise CorruptCandleFileError(segment.path, str(exc)) from exc
            if int(ts[a]) != segment.first or int(ts[b - 1]) != segment.last:
                raise CorruptCandleFileError(
                    segment.path, "its first/last candle do not match its name"
                )
    if len(segments) > 1 and not bool((np.diff(ts) > 0).all()):
        frame = frame.drop_duplicates("timestamp", keep="last").sort_values(
            "timestamp", kind="stable"
        )
        frame = frame.reset_index(drop=True)
    return frame


class CandleStore:
    """Parquet files of candles under ``data_dir/candles``; see the module docstring.

    ``compact_after`` pending segments of a series make an append or a read schedule a
    compaction in the background (``None``: only :meth:`compact` and :meth:`write_all` fold
    segments in); ``compact_delay_s`` is how long it waits first.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        compact_after: int | None = COMPACT_AFTER,
        compact_delay_s: float = _COMPACT_DELAY_S,
    ) -> None:
        self.root = Path(data_dir) / "candles"
        self.compact_after = compact_after
        self.compact_delay_s = compact_delay_s
        # footer facts per main file, valid while its (inode, mtime, size) stay the same: only
        # a compaction or write_all (any process) replaces it, so appends skip the footer read
        self._heads: dict[Path, tuple[tuple[int, int, int], _Head]] = {}

    # ---- paths ---------------------------------------------------------------------------------

    def path_for(self, exchange: str, symbol: str, timeframe: str) -> Path:
        """Where the series' main file lives (the file may not exist yet)."""
        return self.root / exchange.lower() / symbol_to_dirname(symbol) / f"{timeframe}.parquet"

    def exists(self, exchange: str, symbol: str, timeframe: str) -> bool:
        """True when anything is stored for the series."""
        path = self.path_for(exchange, symbol, timeframe)
        return path.is_file() or bool(list_segments(path))

    def pending_segments(self, exchange: str, symbol: str, timeframe: str) -> int:
        """How many segment files are waiting to be folded into the main file."""
        path = self.path_for(exchange, symbol, timeframe)
        head = self._head(path)
        through = head.through if head is not None else 0
        return sum(1 for seg in list_segments(path) if seg.seq > through)

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
        snap = self._snapshot(path, start=start, end=end)
        frame = empty_frame() if snap.main is None else _main_frame(snap.main, path)
        if snap.segments:
            frame = merge_frames(frame, _segments_frame(snap.segments))
        if start is not None or end is not None:
            ts = frame["timestamp"].to_numpy()
            lo = 0 if start is None else int(np.searchsorted(ts, start, "left"))
            hi = len(ts) if end is None else int(np.searchsorted(ts, end, "left"))
            frame = frame.iloc[lo:hi].reset_index(drop=True)
        self._maybe_schedule(path, exchange, symbol, timeframe, snap.pending)
        return frame

    def read_timestamps(self, exchange: str, symbol: str, timeframe: str) -> np.ndarray:
        """Only the timestamp column (cheap), as int64, sorted and unique."""
        return self._timestamps(self.path_for(exchange, symbol, timeframe))

    def last_timestamp(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """Open time of the newest stored candle, or None when nothing is stored."""
        ts = self.read_timestamps(exchange, symbol, timeframe)
        return int(ts[-1]) if ts.size else None

    def _timestamps(self, path: Path) -> np.ndarray:
        snap = self._snapshot(path, columns=["timestamp"])
        main = (
            np.array([], dtype="int64")
            if snap.main is None
            else snap.main.column("timestamp").to_numpy().astype("int64", copy=False)
        )
        if not snap.segments:
            return main
        seg = np.concatenate([t.column("timestamp").to_numpy() for _, t in snap.segments])
        if bool((np.diff(seg) > 0).all()) and (main.size == 0 or seg[0] > main[-1]):
            return np.concatenate([main, seg])  # the usual case: segments extend the main file
        return np.union1d(main, seg)

    def _snapshot(
        self,
        path: Path,
        *,
        columns: list[str] | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> _Snapshot:
        """Main file and pending segments as of one moment, without taking the lock.

        A compaction replaces the main file (new inode) before it deletes the segments it
        folded in, so a view is consistent when the path still names the main file that was
        read once the segments were read, and none of them vanished; otherwise read again.
        """
        for _ in range(_SNAPSHOT_ATTEMPTS):
            main: pa.Table | None = None
            sig, through = None, 0
            try:
                # One open file for the whole read: by path, pyarrow may open it more than once
                # and mix the old and the new file of a compaction replacing it meanwhile.
                handle = open(path, "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                pass
            else:
                with handle:
                    st = os.fstat(handle.fileno())
                    sig = (st.st_ino, st.st_mtime_ns, st.st_size)
                    try:
                        main = pq.read_table(handle, columns=columns)
                    except (OSError, pa.ArrowException) as exc:
                        raise CorruptCandleFileError(path, f"cannot read parquet ({exc})") from exc
                through = _through(main.schema.metadata, path)
            pending = [seg for seg in list_segments(path) if seg.seq > through]
            wanted = [
                seg
                for seg in pending
                if (start is None or seg.last >= start) and (end is None or seg.first < end)
            ]
            try:
                segments = [(seg, self._read_segment(seg, columns)) for seg in wanted]
            except FileNotFoundError:
                continue  # compacted away meanwhile
            if _stat_sig(path) == sig:
                return _Snapshot(main, segments, len(pending))
        raise CandleStoreError(f"candle file {path} kept changing while being read; try again")

    @staticmethod
    def _read_segment(segment: Segment, columns: list[str] | None = None) -> pa.Table:
        try:
            table = read_segment(segment)
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as exc:
            raise CorruptCandleFileError(segment.path, f"cannot read segment ({exc})") from exc
        if not table.schema.equals(_SCHEMA, check_metadata=False) or table.num_rows == 0:
            raise CorruptCandleFileError(segment.path, f"not a candle segment ({table.schema})")
        return table if columns is None else table.select(columns)

    def _head(self, path: Path) -> _Head | None:
        """The main file's footer facts, or None when there is no main file."""
        try:
            with open(path, "rb") as handle:  # one open: see _snapshot
                st = os.fstat(handle.fileno())
                sig = (st.st_ino, st.st_mtime_ns, st.st_size)
                cached = self._heads.get(path)
                if cached is not None and cached[0] == sig:
                    return cached[1]
                meta = pq.read_metadata(handle)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowException) as exc:
            raise CorruptCandleFileError(path, f"cannot read parquet ({exc})") from exc
        names = list(meta.schema.names)
        if "timestamp" not in names:
            raise CorruptCandleFileError(path, "missing column(s) timestamp")
        idx = names.index("timestamp")
        last: int | None = None
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            if group.num_rows == 0:
                continue
            stats = group.column(idx).statistics
            if stats is None or not stats.has_min_max:
                last = None  # unknown: the caller reads the timestamps instead
                break
            last = int(stats.max) if last is None else max(last, int(stats.max))
        head = _Head(_through(meta.metadata, path), meta.num_rows, last)
        self._heads[path] = (sig, head)
        return head

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
        """Validate ``candles`` and store them; they win over stored rows with the same time.

        The rows go to a new segment file (the main file is not read nor rewritten, so the
        cost does not grow with the history); the first rows of a series create its main file.
        Returns the number of timestamps that were not stored before. Raises
        :class:`InvalidCandlesError` (nothing written) when ``candles`` is invalid and
        :class:`CorruptCandleFileError` when the stored main file cannot be read as parquet (a
        stored file whose candles break an invariant is reported by :meth:`read`).
        """
        # numpy arrays, not a frame: this runs for every closed candle of every symbol
        columns = _normalized_columns(candles)
        _validate_columns(columns, source)
        ts = columns["timestamp"]
        if ts.size == 0:
            return 0
        path = self.path_for(exchange, symbol, timeframe)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(path):
            head = self._head(path)
            if head is None:
                new = pd.DataFrame(columns)
                return self._compact_locked(path, exchange, symbol, timeframe, extra=new)[1]
            segments = list_segments(path)
            pending = [seg for seg in segments if seg.seq > head.through]
            for seg in segments:
                if seg.seq <= head.through:
                    _unlink_quietly(seg.path)  # left by a compaction killed before its clean-up
            added = self._count_new(path, head, pending, ts)
            seq = max([head.through] + [seg.seq for seg in segments]) + 1
            table = pa.Table.from_arrays([columns[c] for c in COLUMNS], schema=_SCHEMA)
            write_segment(path, seq, table)
        self._maybe_schedule(
            path, exchange, symbol, timeframe, len(pending) + 1, bulk=ts.size >= _BULK_ROWS
        )
        return added

    def _count_new(self, path: Path, head: _Head, pending: list[Segment], ts: np.ndarray) -> int:
        """How many of the timestamps ``ts`` are not stored yet (cheap when they all follow)."""
        first, last = int(ts[0]), int(ts[-1])
        if head.last is not None or head.rows == 0:
            newest = max([head.last or -1] + [seg.last for seg in pending])
            if first > newest:
                return len(ts)
        stored: list[np.ndarray] = []
        if head.rows:
            try:
                main = pq.read_table(path, columns=["timestamp"]).column("timestamp").to_numpy()
            except (OSError, pa.ArrowException) as exc:
                raise CorruptCandleFileError(path, f"cannot read parquet ({exc})") from exc
            stored.append(main[(main >= first) & (main <= last)])
        for seg in pending:
            if seg.last >= first and seg.first <= last:
                stored.append(self._read_segment(seg, ["timestamp"]).column(0).to_numpy())
        if not stored:
            return len(ts)
        return len(ts) - int(np.isin(ts, np.concatenate(stored)).sum())

    def write_all(self, exchange: str, symbol: str, timeframe: str, candles: pd.DataFrame) -> None:
        """Replace the whole series with ``candles`` (validated first, atomic)."""
        frame = normalize_frame(candles)
        validate_frame(frame)
        path = self.path_for(exchange, symbol, timeframe)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(path):
            segments = list_segments(path)
            try:
                head = self._head(path)
            except CorruptCandleFileError:
                head = None  # replaced as a whole: what it held does not matter
            through = max([head.through if head else 0] + [seg.seq for seg in segments])
            self._write_atomic(path, frame, exchange, symbol, timeframe, through)
            self._discard(path, segments)

    def compact(self, exchange: str, symbol: str, timeframe: str) -> int:
        """Fold the series' pending segments into its main file now; returns how many.

        Atomic and under the series lock: a crash leaves either the old main file and every
        segment, or the new main file (whose ``kmg.through`` marks the segments as folded in).
        """
        path = self.path_for(exchange, symbol, timeframe)
        if not path.parent.is_dir():
            return 0
        with self._lock(path):
            return self._compact_locked(path, exchange, symbol, timeframe)[0]

    def compact_all(self) -> int:
        """Compact every stored series; returns how many segments were folded in."""
        folded = 0
        for path in self.iter_paths():
            meta = pq.read_schema(path).metadata or {}
            folded += self.compact(
                meta.get(b"kmg.exchange", path.parent.parent.name.encode()).decode(),
                meta.get(b"kmg.symbol", path.parent.name.replace("_", "/", 1).encode()).decode(),
                meta.get(b"kmg.timeframe", path.stem.encode()).decode(),
            )
        return folded

    def _compact_locked(
        self,
        path: Path,
        exchange: str,
        symbol: str,
        timeframe: str,
        extra: pd.DataFrame | None = None,
    ) -> tuple[int, int]:
        """Rewrite the main file with its pending segments (and ``extra`` rows) folded in.

        Returns (segments folded, timestamps of ``extra`` that were new). Caller holds the lock.
        """
        segments = list_segments(path)
        frame, through = empty_frame(), 0
        if path.is_file():
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException) as exc:
                raise CorruptCandleFileError(path, f"cannot read parquet ({exc})") from exc
            through = _through(table.schema.metadata, path)
            frame = _main_frame(table, path)
            del table
        pending = [(seg, self._read_segment(seg)) for seg in segments if seg.seq > through]
        if not pending and extra is None:
            self._discard(path, segments)
            return 0, 0
        if pending:
            frame = merge_frames(frame, _segments_frame(pending))
        before = len(frame)
        if extra is not None:
            frame = merge_frames(frame, extra)
            validate_frame(frame, str(path))
        through = max([through] + [seg.seq for seg in segments])
        self._write_atomic(path, frame, exchange, symbol, timeframe, through)
        self._discard(path, segments)
        return len(pending), len(frame) - before

    def _discard(self, path: Path, segments: list[Segment]) -> None:
        """Delete folded segments and temp files of killed writers (after the main file that
        supersedes them was made durable by :meth:`_write_atomic`). Caller holds the lock."""
        for seg in segments:
            _unlink_quietly(seg.path)
        for tmp in stray_temp_files(path):
            _unlink_quietly(tmp)

    def _maybe_schedule(
        self,
        path: Path,
        exchange: str,
        symbol: str,
        timeframe: str,
        pending: int,
        *,
        bulk: bool = False,
    ) -> None:
        if self.compact_after is None or (pending < self.compact_after and not bulk):
            return
        if time.monotonic() < _corrupt_until.get(path, 0.0):
            return  # found corrupt recently: do not reread it on every append
        compactor().schedule(
            path,
            functools.partial(self._compact_in_background, exchange, symbol, timeframe),
            self.compact_delay_s,
        )

    def _compact_in_background(self, exchange: str, symbol: str, timeframe: str) -> None:
        path = self.path_for(exchange, symbol, timeframe)
        try:
            folded = self.compact(exchange, symbol, timeframe)
        except CorruptCandleFileError as exc:
            _corrupt_until[path] = time.monotonic() + _RETRY_CORRUPT_S
            logger.error("candle compaction skipped: {}", exc)
            return
        except portalocker.LockException:
            logger.warning("candle compaction of {} skipped: the file stayed locked", path)
            return
        logger.debug("compacted {} segment(s) into {}", folded, path)

    @staticmethod
    def _lock(path: Path) -> portalocker.Lock:
        return portalocker.Lock(
            str(path) + ".lock", timeout=_LOCK_TIMEOUT_S, check_interval=_LOCK_POLL_S
        )

    @staticmethod
    def _write_atomic(
        path: Path,
        frame: pd.DataFrame,
        exchange: str,
        symbol: str,
        timeframe: str,
        through: int = 0,
    ) -> None:
        table = _table(frame)
        # Metadata keeps the real symbol: a directory name like BTC_USDT is ambiguous.
        meta = {b"kmg.exchange": exchange.encode(), b"kmg.symbol": symbol.encode()}
        meta[b"kmg.timeframe"] = timeframe.encode()
        meta[_THROUGH_KEY] = str(through).encode()
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
        fsync_dir(path.parent)  # durable before any segment it supersedes is deleted

    # ---- listing -------------------------------------------------------------------------------

    def iter_paths(self) -> Iterator[Path]:
        """Every stored main parquet file, sorted."""
        if not self.root.is_dir():
            return iter(())
        return iter(sorted(self.root.glob("*/*/*.parquet")))

    def info(self, path: Path) -> SeriesInfo:
        """Summary of one stored series (reads only the timestamps, pending segments included)."""
        from kmg_autotrader.config import timeframe_to_ms

        try:
            with open(path, "rb") as handle:  # one open: see _snapshot
                schema = pq.read_schema(handle)
        except (OSError, pa.ArrowException) as exc:
            raise CorruptCandleFileError(path, f"cannot read parquet ({exc})") from exc
        meta = schema.metadata or {}
        exchange = meta.get(b"kmg.exchange", path.parent.parent.name.encode()).decode()
        symbol = meta.get(b"kmg.symbol", path.parent.name.replace("_", "/", 1).encode()).decode()
        timeframe = meta.get(b"kmg.timeframe", path.stem.encode()).decode()
        ts = self._timestamps(path)
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
