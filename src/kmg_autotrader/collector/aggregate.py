"""Trades → candles, for exchanges whose OHLC endpoint cannot reach back (Kraken).

Buckets are ``floor(ts / timeframe) * timeframe``: open = first trade, high/low = extremes,
close = last trade, volume = summed amount. A bucket without trades between two traded buckets
gets the previous close as OHLC and zero volume — what Kraken's own OHLC endpoint does — so an
empty minute is a quiet candle, not a gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kmg_autotrader.storage.candle_store import COLUMNS, empty_frame


def trades_to_candles(
    timestamps: np.ndarray,
    prices: np.ndarray,
    amounts: np.ndarray,
    timeframe_ms: int,
    *,
    prev_close: float | None = None,
    fill_from: int | None = None,
) -> pd.DataFrame:
    """Aggregate time-sorted trades into candles.

    ``prev_close``/``fill_from`` continue a series: empty buckets from ``fill_from`` up to the
    first traded bucket are filled with ``prev_close``.
    """
    ts = np.asarray(timestamps, dtype="int64")
    if ts.size == 0:
        return empty_frame()
    px = np.asarray(prices, dtype="float64")
    qty = np.asarray(amounts, dtype="float64")
    order = np.argsort(ts, kind="stable")
    ts, px, qty = ts[order], px[order], qty[order]
    bucket = ts // timeframe_ms * timeframe_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], ts.size]
    traded = pd.DataFrame(
        {
            "timestamp": bucket[starts],
            "open": px[starts],
            "high": np.maximum.reduceat(px, starts),
            "low": np.minimum.reduceat(px, starts),
            "close": px[ends - 1],
            "volume": np.add.reduceat(qty, starts),
        }
    )
    first = int(traded["timestamp"].to_numpy()[0])
    if prev_close is not None and fill_from is not None and fill_from < first:
        first = fill_from
    full = np.arange(first, int(traded["timestamp"].to_numpy()[-1]) + timeframe_ms, timeframe_ms)
    if full.size == len(traded):
        return traded
    frame = traded.set_index("timestamp").reindex(full)
    close = frame["close"].ffill()
    if prev_close is not None:
        close = close.fillna(prev_close)
    for col in ("open", "high", "low"):
        frame[col] = frame[col].fillna(close)
    frame["close"] = close
    frame["volume"] = frame["volume"].fillna(0.0)
    frame = frame.dropna().rename_axis("timestamp").reset_index()
    frame["timestamp"] = frame["timestamp"].astype("int64")
    return frame[list(COLUMNS)]


class TradeAggregator:
    """Streaming aggregation: feed trade pages, get candles whose bucket is complete."""

    def __init__(self, timeframe_ms: int, prev_close: float | None = None) -> None:
        self.timeframe_ms = timeframe_ms
        self.prev_close = prev_close
        self.next_bucket: int | None = None
        self._ts: list[np.ndarray] = []
        self._px: list[np.ndarray] = []
        self._qty: list[np.ndarray] = []

    def add(self, timestamps: np.ndarray, prices: np.ndarray, amounts: np.ndarray) -> None:
        """Queue trades (any order within the page; pages must move forward in time)."""
        self._ts.append(np.asarray(timestamps, dtype="int64"))
        self._px.append(np.asarray(prices, dtype="float64"))
        self._qty.append(np.asarray(amounts, dtype="float64"))

    def pop_complete(self, complete_before: int) -> pd.DataFrame:
        """Candles of every bucket that ends at or before ``complete_before`` (epoch ms)."""
        if not self._ts:
            return empty_frame()
        ts = np.concatenate(self._ts)
        px = np.concatenate(self._px)
        qty = np.concatenate(self._qty)
        cut = complete_before // self.timeframe_ms * self.timeframe_ms
        done = ts < cut
        keep = ~done
        self._ts, self._px, self._qty = [ts[keep]], [px[keep]], [qty[keep]]
        candles = trades_to_candles(
            ts[done],
            px[done],
            qty[done],
            self.timeframe_ms,
            prev_close=self.prev_close,
            fill_from=self.next_bucket,
        )
        if not candles.empty:
            self.prev_close = float(candles["close"].to_numpy()[-1])
            self.next_bucket = int(candles["timestamp"].to_numpy()[-1]) + self.timeframe_ms
        return candles
