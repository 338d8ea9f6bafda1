"""Where a backtest's candles come from: the parquet candle store, a packaged sample set, or
one candle file. Every failure is a :class:`BacktestError` with one line for the user."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kmg_autotrader.backtest.runner import BacktestError
from kmg_autotrader.storage.candle_store import CandleStore, CandleStoreError, fmt_ms


def _slice(frame: pd.DataFrame, start_ms: int | None, end_ms: int | None) -> pd.DataFrame:
    ts = frame["timestamp"].to_numpy()
    lo = 0 if start_ms is None else int(ts.searchsorted(start_ms, "left"))
    hi = len(ts) if end_ms is None else int(ts.searchsorted(end_ms, "left"))
    return frame.iloc[lo:hi].reset_index(drop=True)


def _range(start_ms: int | None, end_ms: int | None) -> str:
    a = fmt_ms(start_ms) if start_ms is not None else "the beginning"
    b = fmt_ms(end_ms) if end_ms is not None else "the end"
    return f"{a} → {b}"


def load_stored(
    data_dir: Path,
    exchange: str,
    symbols: Sequence[str],
    timeframe: str,
    start_ms: int | None,
    end_ms: int | None,
) -> dict[str, pd.DataFrame]:
    """Candles of ``symbols`` from ``data_dir``'s candle store, ``start <= t < end``."""
    store = CandleStore(data_dir)
    out: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        if not store.exists(exchange, symbol, timeframe):
            raise BacktestError(
                f"no stored {timeframe} candles for {symbol} on {exchange} under {data_dir} "
                f"(run `kmg download --symbols {symbol} --timeframe {timeframe}`, "
                "or try --sample)"
            )
        try:
            frame = store.read(exchange, symbol, timeframe, start_ms, end_ms)
        except CandleStoreError as exc:
            raise BacktestError(str(exc)) from None
        if len(frame) < 2:
            raise BacktestError(
                f"no {symbol} {timeframe} candles stored for {_range(start_ms, end_ms)}"
            )
        out[symbol] = frame
    return out


def load_sample(
    name: str, symbols: Sequence[str] | None, start_ms: int | None, end_ms: int | None
) -> dict[str, pd.DataFrame]:
    """A packaged sample set (no download), optionally restricted to ``symbols`` and a range."""
    from kmg_autotrader.sample_data import load_sample_set

    try:
        frames = load_sample_set(name)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    if symbols:
        missing = [s for s in symbols if s not in frames]
        if missing:
            raise BacktestError(
                f"sample set {name!r} has no {', '.join(missing)} (it has {', '.join(frames)})"
            )
        frames = {s: frames[s] for s in symbols}
    out = {s: _slice(f, start_ms, end_ms) for s, f in frames.items()}
    empty = [s for s, f in out.items() if len(f) < 2]
    if empty:
        raise BacktestError(
            f"sample set {name!r} has no {', '.join(empty)} candles for {_range(start_ms, end_ms)}"
        )
    return out


def load_file(
    path: Path, symbol: str | None, timeframe: str, start_ms: int | None, end_ms: int | None
) -> dict[str, pd.DataFrame]:
    """One candle file (CSV, parquet or feather; see ``kmg data import``)."""
    from kmg_autotrader.collector.importer import ImportFormatError, read_candle_file

    try:
        imported = read_candle_file(path, symbol=symbol, timeframe=timeframe)
    except (ImportFormatError, CandleStoreError, ValueError) as exc:
        raise BacktestError(str(exc)) from None
    name = imported.symbol or symbol
    if name is None:
        raise BacktestError(f"{path}: cannot tell the symbol from the file name; pass --symbols")
    frame = _slice(imported.frame, start_ms, end_ms)
    if len(frame) < 2:
        raise BacktestError(f"{path}: no candles for {_range(start_ms, end_ms)}")
    return {name: frame}
