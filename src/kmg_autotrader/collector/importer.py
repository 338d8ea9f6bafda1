"""Read candle files people already have: CSV, freqtrade JSON/feather, Kraken OHLCVT/trades CSV.

Formats recognised (by extension and content):

* CSV with a header: ``timestamp`` (UTC epoch ms or ISO 8601; ``date``/``time``/``datetime``
  also accepted), open, high, low, close, volume.
* Kraken's published OHLCVT CSV (no header: unix seconds, open, high, low, close, volume,
  trades), named like ``XBTUSD_5.csv`` (pair_minutes).
* Kraken trades CSV (no header: unix seconds, price, volume) — aggregated into candles of the
  requested timeframe.
* freqtrade JSON (``[[ms, o, h, l, c, v], ...]``, optionally ``.json.gz``) and feather (``date``
  column) files, named like ``BTC_USDT-5m.feather``; the exchange is taken from the parent
  directory name when it is a ccxt id.

A file that is out of order, has duplicate timestamps or impossible values is refused with the
first bad row named; :func:`read_candle_file` never writes anything. Beyond the candle store's
invariants (finite, positive, ``low <= open, close <= high``, volume >= 0) an import also
refuses implausible magnitudes (:func:`check_plausible`) and a file without a single candle.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd

from kmg_autotrader.collector.aggregate import trades_to_candles
from kmg_autotrader.exchange.adapter import timeframe_ms
from kmg_autotrader.storage.candle_store import (
    COLUMNS,
    InvalidCandlesError,
    normalize_frame,
    validate_frame,
)

_FREQTRADE_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+_[A-Za-z0-9]+)-(?P<tf>\d+[smhdwM])(?P<rest>-[a-z]+)?$"
)
_KRAKEN_NAME = re.compile(r"^(?P<pair>[A-Z0-9]+)_(?P<minutes>\d+)$")
_KRAKEN_QUOTES = ("USDT", "USDC", "USD", "EUR", "GBP", "CAD", "JPY", "CHF", "AUD", "XBT", "ETH")
_KRAKEN_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}
_TIME_COLUMNS = ("timestamp", "date", "time", "datetime", "open_time")


class ImportFormatError(ValueError):
    """The file cannot be read as candles (unknown layout, unreadable values)."""


# Plausibility bounds for an imported price, in quote currency per unit of base. A real market
# stays far inside them: BTC priced in IDR or VND is ~2e9, a meme coin priced in BTC ~1e-10.
# Outside them the file holds garbage (1e300), another unit or a shifted column.
MAX_PRICE = 1e12
MIN_PRICE = 1e-12
# Base units traded in one candle: the most liquid low-priced tokens trade ~1e13 per day.
MAX_VOLUME = 1e18


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What a file name tells about its series (each may be None)."""

    exchange: str | None
    symbol: str | None
    timeframe: str | None
    kind: str


@dataclass(slots=True)
class ImportedCandles:
    """Validated candles read from a file and the series they belong to."""

    frame: pd.DataFrame
    exchange: str | None
    symbol: str | None
    timeframe: str | None
    kind: str


def _kraken_pair_to_symbol(pair: str) -> str | None:
    for quote in _KRAKEN_QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            base = pair[: -len(quote)]
            return f"{_KRAKEN_ASSETS.get(base, base)}/{_KRAKEN_ASSETS.get(quote, quote)}"
    return None


def _minutes_to_timeframe(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def meta_from_name(path: Path) -> FileMeta:
    """Exchange, symbol and timeframe guessed from a freqtrade or Kraken file name."""
    name = path.name
    for suffix in (".gz", ".feather", ".json", ".csv", ".parquet"):
        name = name.removesuffix(suffix)
    parent = path.parent.name.lower()
    exchange = parent if parent in ccxt.exchanges else None
    match = _FREQTRADE_NAME.match(name)
    if match:
        base, quote = match.group("pair").split("_", 1)
        return FileMeta(exchange, f"{base}/{quote}".upper(), match.group("tf"), "freqtrade")
    match = _KRAKEN_NAME.match(name)
    if match:
        symbol = _kraken_pair_to_symbol(match.group("pair"))
        tf = _minutes_to_timeframe(int(match.group("minutes")))
        return FileMeta(exchange or "kraken", symbol, tf, "kraken")
    return FileMeta(exchange, None, None, "unknown")


def _parse_time_column(values: pd.Series, source: str) -> np.ndarray:
    """Epoch ms from numbers (ms) or ISO strings / datetimes."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dt = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
        return np.asarray(dt.dt.tz_convert("UTC").dt.as_unit("ms").astype("int64"), dtype="int64")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        arr = numeric.to_numpy()
        if arr.dtype.kind == "f" and (arr != np.floor(arr)).any():
            row = int(np.flatnonzero(arr != np.floor(arr))[0])
            raise InvalidCandlesError(
                f"{source}: row {row + 1}: timestamp {arr[row]} is not whole epoch ms", row
            )
        return np.asarray(arr, dtype="int64")
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise InvalidCandlesError(
            f"{source}: row {row + 1}: timestamp {values.iat[row]!r} is neither epoch ms nor ISO",
            row,
        )
    # pandas may pick second resolution for ISO strings: convert units explicitly.
    return np.asarray(parsed.dt.as_unit("ms").astype("int64"), dtype="int64")


def _frame_from_columns(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    columns = {str(c).strip().lower(): c for c in raw.columns}
    time_col = next((columns[c] for c in _TIME_COLUMNS if c in columns), None)
    missing = [c for c in COLUMNS[1:] if c not in columns]
    if time_col is None or missing:
        need = ", ".join(["timestamp", *missing] if time_col is None else missing)
        raise ImportFormatError(f"{source}: missing column(s) {need}")
    frame = pd.DataFrame({"timestamp": _parse_time_column(raw[time_col], source)})
    for col in COLUMNS[1:]:
        values = pd.to_numeric(raw[columns[col]], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            row = int(bad[0])
            raise InvalidCandlesError(
                f"{source}: row {row + 1}: {col} {raw[columns[col]].iat[row]!r} is not a number",
                row,
            )
        frame[col] = values.to_numpy(dtype="float64")
    return frame


def _read_headerless_csv(
    path: Path, timeframe: str | None, source: str
) -> tuple[pd.DataFrame, str]:
    raw = pd.read_csv(path, header=None)
    if raw.shape[1] in (6, 7):  # Kraken OHLCVT: seconds, o, h, l, c, v[, trades]
        raw = raw.iloc[:, :6]
        raw.columns = list(COLUMNS)
        frame = _frame_from_columns(raw, source)
        frame["timestamp"] = frame["timestamp"] * 1000
        return frame, "kraken-ohlcvt"
    if raw.shape[1] == 3:  # Kraken trades: seconds, price, volume
        if timeframe is None:
            raise ImportFormatError(f"{source}: a trades file needs --timeframe")
        seconds = pd.to_numeric(raw[0], errors="coerce").to_numpy(dtype="float64")
        ts = np.round(seconds * 1000).astype("int64")
        if (np.diff(ts) < 0).any():
            row = int(np.flatnonzero(np.diff(ts) < 0)[0]) + 1
            raise InvalidCandlesError(f"{source}: row {row + 1}: trade out of order", row)
        frame = trades_to_candles(
            ts,
            pd.to_numeric(raw[1], errors="coerce").to_numpy(dtype="float64"),
            pd.to_numeric(raw[2], errors="coerce").to_numpy(dtype="float64"),
            timeframe_ms(timeframe),
        )
        return frame, "kraken-trades"
    raise ImportFormatError(
        f"{source}: a CSV without a header must be Kraken OHLCVT (6–7 columns) or trades "
        f"(3 columns), this one has {raw.shape[1]}"
    )


def _read_any(path: Path, timeframe: str | None) -> tuple[pd.DataFrame, str]:
    source = str(path)
    name = path.name.lower()
    if name.endswith(".feather"):
        return _frame_from_columns(pd.read_feather(path), source), "feather"
    if name.endswith(".parquet"):
        return _frame_from_columns(pd.read_parquet(path), source), "parquet"
    if name.endswith((".json", ".json.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        if isinstance(data, list) and (not data or isinstance(data[0], list)):
            raw = pd.DataFrame([row[:6] for row in data], columns=list(COLUMNS))
        elif isinstance(data, list):
            raw = pd.DataFrame(data)
        else:
            raise ImportFormatError(f"{source}: expected a JSON list of candles")
        return _frame_from_columns(raw, source), "json"
    if name.endswith((".csv", ".csv.gz", ".txt")):
        with (gzip.open if name.endswith(".gz") else open)(path, "rt", encoding="utf-8") as fh:
            first = fh.readline()
        has_header = any(ch.isalpha() for ch in first.replace("e+", "").replace("E+", ""))
        if not has_header:
            return _read_headerless_csv(path, timeframe, source)
        return _frame_from_columns(pd.read_csv(path), source), "csv"
    raise ImportFormatError(
        f"{source}: unknown file type; use .csv, .json, .json.gz, .feather or .parquet"
    )


def check_plausible(frame: pd.DataFrame, source: str) -> None:
    """Raise :class:`InvalidCandlesError` naming the first row with an implausible magnitude.

    Run after :func:`validate_frame` (which refuses non-finite, non-positive and inverted
    rows): a price outside [:data:`MIN_PRICE`, :data:`MAX_PRICE`] or a volume above
    :data:`MAX_VOLUME`.
    """
    if frame.empty:
        return
    prices = frame[["open", "high", "low", "close"]].to_numpy()
    volume = frame["volume"].to_numpy()
    problems = [
        (
            (prices > MAX_PRICE).any(axis=1),
            f"price above {MAX_PRICE:g} quote per unit (garbage, wrong unit or column?)",
        ),
        (
            (prices < MIN_PRICE).any(axis=1),
            f"price below {MIN_PRICE:g} quote per unit (garbage, wrong unit or column?)",
        ),
        (volume > MAX_VOLUME, f"volume above {MAX_VOLUME:g} units in one candle"),
    ]
    first: tuple[int, str] | None = None
    for mask, reason in problems:
        hits = np.flatnonzero(mask)
        if hits.size and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), reason)
    if first is None:
        return
    row, reason = first
    values = ", ".join(f"{c}={frame[c].iat[row]!r}" for c in COLUMNS[1:])
    raise InvalidCandlesError(f"{source}: row {row + 1}: {reason} [{values}]", row)


def read_candle_file(
    path: Path | str,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> ImportedCandles:
    """Read and validate a candle file; explicit arguments win over the file name.

    Raises :class:`ImportFormatError` (also for a file without candles) or
    :class:`InvalidCandlesError` (first bad or implausible row named).
    """
    source = Path(path)
    if not source.is_file():
        raise ImportFormatError(f"{source}: no such file")
    meta = meta_from_name(source)
    tf = timeframe or meta.timeframe
    if tf is not None:
        timeframe_ms(tf)  # fail early on a bad timeframe
    try:
        frame, kind = _read_any(source, tf)
    except (InvalidCandlesError, ImportFormatError):
        raise
    except (ValueError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{source}: cannot read ({exc})") from exc
    frame = normalize_frame(frame)
    if frame.empty:
        raise ImportFormatError(f"{source}: no candles in the file (only a header?)")
    validate_frame(frame, str(source))
    check_plausible(frame, str(source))
    if tf is not None and len(frame) > 1:
        step = timeframe_ms(tf)
        off = np.flatnonzero(frame["timestamp"].to_numpy() % step != 0)
        if off.size:
            row = int(off[0])
            raise InvalidCandlesError(
                f"{source}: row {row + 1}: timestamp {frame['timestamp'].iat[row]} is not on a "
                f"{tf} boundary (wrong --timeframe?)",
                row,
            )
    return ImportedCandles(
        frame=frame,
        exchange=(exchange or meta.exchange),
        symbol=(symbol.upper() if symbol else meta.symbol),
        timeframe=tf,
        kind=kind,
    )
