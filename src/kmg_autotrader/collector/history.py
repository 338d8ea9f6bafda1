"""History backfill: page an exchange's candles (or trades) into the parquet store.

Resumes from the last stored candle, never stores the still-open candle, refills holes it finds
inside the requested range, and reports progress through a callback (the CLI draws a rich bar).
The path (OHLCV or trades) is chosen from the exchange's capability record, not by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from kmg_autotrader.collector.aggregate import TradeAggregator
from kmg_autotrader.exchange.adapter import ExchangeAdapter, timeframe_ms
from kmg_autotrader.exchange.capabilities import HistoryPath, choose_history_path
from kmg_autotrader.storage.candle_store import (
    COLUMNS,
    CandleStore,
    Gap,
    empty_frame,
    find_gaps,
)

Clock = Callable[[], int]

# How often a short trades page with nothing new is asked again before it counts as the end.
_STALE_RETRIES = 1


def wall_clock_ms() -> int:
    """Current UTC time in epoch ms."""
    return int(time.time() * 1000)


@dataclass(slots=True)
class DownloadProgress:
    """Where a download stands; ``cursor`` moves from ``start`` to ``end`` (epoch ms)."""

    symbol: str
    timeframe: str
    path: HistoryPath
    start: int
    end: int
    cursor: int
    candles: int = 0
    phase: str = "download"  # download | refill

    @property
    def fraction(self) -> float:
        """0..1 share of the time range covered."""
        span = max(self.end - self.start, 1)
        return min(max((self.cursor - self.start) / span, 0.0), 1.0)


@dataclass(slots=True)
class DownloadResult:
    """What one symbol's download did."""

    symbol: str
    timeframe: str
    path: HistoryPath
    added: int
    first: int | None
    last: int | None
    gaps_found: list[Gap] = field(default_factory=list)
    gaps_remaining: list[Gap] = field(default_factory=list)


ProgressCallback = Callable[[DownloadProgress], None]


def _frame(rows: list[list[Any]]) -> pd.DataFrame:
    if not rows:
        return empty_frame()
    arr = np.asarray([r[:6] for r in rows], dtype="float64")
    frame = pd.DataFrame(arr, columns=list(COLUMNS))
    frame["timestamp"] = frame["timestamp"].astype("int64")
    return frame


class HistoryDownloader:
    """Download candle history for one exchange into a :class:`CandleStore`."""

    def __init__(
        self,
        adapter: ExchangeAdapter,
        store: CandleStore,
        *,
        clock: Clock = wall_clock_ms,
        on_progress: ProgressCallback | None = None,
        flush_rows: int = 50_000,
    ) -> None:
        self.adapter = adapter
        self.store = store
        self.clock = clock
        self.on_progress = on_progress
        self.flush_rows = flush_rows

    def plan_path(self, since: int, timeframe: str) -> HistoryPath:
        """The history path the exchange's capabilities call for."""
        return choose_history_path(
            self.adapter.capabilities, since, self.clock(), timeframe_ms(timeframe)
        )

    async def download(
        self, symbol: str, timeframe: str, since: int, until: int | None = None
    ) -> DownloadResult:
        """Fill the store with every closed candle in ``[since, until)`` (until: now).

        Only ranges not stored yet are fetched (before the first and after the last stored
        candle, plus holes inside), so an interrupted download resumes where it stopped.
        """
        tf = timeframe_ms(timeframe)
        now = self.clock()
        start = since // tf * tf
        # The candle containing `now` is still open: stop before it.
        end = min(until if until is not None else now, now // tf * tf)
        path = self.plan_path(start, timeframe)
        exchange = self.adapter.id
        stored = self.store.read_timestamps(exchange, symbol, timeframe)
        ranges: list[tuple[int, int]] = []
        if stored.size == 0:
            ranges.append((start, end))
        else:
            if start < stored[0]:
                ranges.append((start, min(int(stored[0]), end)))
            if int(stored[-1]) + tf < end:
                ranges.append((max(int(stored[-1]) + tf, start), end))
        progress = DownloadProgress(symbol, timeframe, path, start, end, start)
        if stored.size and not ranges:
            progress.cursor = end
        added = 0
        for lo, hi in ranges:
            if lo < hi:
                added += await self._fetch_range(symbol, timeframe, lo, hi, path, progress)
        # Holes inside the requested range: refill each once; what stays missing is reported.
        ts = self.store.read_timestamps(exchange, symbol, timeframe)
        ts = ts[(ts >= start) & (ts < end)]
        gaps_found = find_gaps(ts, tf)
        if gaps_found:
            logger.info("{} {}: {} gap(s) to refill", symbol, timeframe, len(gaps_found))
            progress.phase = "refill"
            for gap in gaps_found:
                gap_path = self.plan_path(gap.start, timeframe)
                added += await self._fetch_range(
                    symbol, timeframe, gap.start, gap.end, gap_path, progress
                )
        ts = self.store.read_timestamps(exchange, symbol, timeframe)
        in_range = ts[(ts >= start) & (ts < end)]
        remaining = find_gaps(in_range, tf)
        for gap in remaining:
            logger.warning("{} {}: exchange has no candles for {}", symbol, timeframe, gap)
        progress.cursor = end
        self._report(progress)
        return DownloadResult(
            symbol=symbol,
            timeframe=timeframe,
            path=path,
            added=added,
            first=int(ts[0]) if ts.size else None,
            last=int(ts[-1]) if ts.size else None,
            gaps_found=gaps_found,
            gaps_remaining=remaining,
        )

    def _report(self, progress: DownloadProgress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)

    async def _fetch_range(
        self,
        symbol: str,
        timeframe: str,
        lo: int,
        hi: int,
        path: HistoryPath,
        progress: DownloadProgress,
    ) -> int:
        if path is HistoryPath.TRADES:
            return await self._fetch_trades_range(symbol, timeframe, lo, hi, progress)
        return await self._fetch_ohlcv_range(symbol, timeframe, lo, hi, progress)

    def _flush(self, symbol: str, timeframe: str, frames: list[pd.DataFrame]) -> int:
        if not frames:
            return 0
        frame = pd.concat(frames, ignore_index=True)
        frames.clear()
        return self.store.append(
            self.adapter.id, symbol, timeframe, frame, source=f"{self.adapter.id} {symbol}"
        )

    async def _fetch_ohlcv_range(
        self, symbol: str, timeframe: str, lo: int, hi: int, progress: DownloadProgress
    ) -> int:
        tf = timeframe_ms(timeframe)
        limit = self.adapter.capabilities.ohlcv_page_limit
        cursor, added, pending, buffered = lo, 0, [], 0
        try:
            while cursor < hi:
                rows = await self.adapter.fetch_ohlcv(symbol, timeframe, since=cursor, limit=limit)
                # Keep closed candles of this range only; drop a partial duplicate of the cursor.
                page = [r for r in rows if cursor <= int(r[0]) < hi]
                if not page:
                    break  # nothing more before `hi` (not listed yet, or an outage)
                frame = _frame(page)
                frame = frame.drop_duplicates("timestamp", keep="last")
                pending.append(frame)
                buffered += len(frame)
                progress.candles += len(frame)
                cursor = int(frame["timestamp"].to_numpy()[-1]) + tf
                progress.cursor = cursor
                self._report(progress)
                if buffered >= self.flush_rows:
                    added += self._flush(symbol, timeframe, pending)
                    buffered = 0
        finally:
            # Whatever was fetched before a failure is kept, so the next run resumes after it.
            added += self._flush(symbol, timeframe, pending)
        return added

    async def _fetch_trades_range(
        self, symbol: str, timeframe: str, lo: int, hi: int, progress: DownloadProgress
    ) -> int:
        tf = timeframe_ms(timeframe)
        caps = self.adapter.capabilities
        prior = self.store.read(self.adapter.id, symbol, timeframe, end=lo)
        prev_close = float(prior["close"].to_numpy()[-1]) if not prior.empty else None
        agg = TradeAggregator(tf, prev_close=prev_close)
        if prev_close is not None and int(prior["timestamp"].to_numpy()[-1]) == lo - tf:
            agg.next_bucket = lo
        since: int = lo
        params: dict[str, Any] = {}
        seen: set[str] = set()
        added, pending, buffered, stale = 0, [], 0, 0
        try:
            while since < hi:
                trades = await self.adapter.fetch_trades(
                    symbol, since=since, limit=caps.trades_page_limit, params=params
                )
                # Pages overlap at the cursor: drop trades already seen by id.
                fresh = [t for t in trades if t.get("id") is None or str(t["id"]) not in seen]
                in_range = [t for t in fresh if lo <= int(t["timestamp"]) < hi]
                if in_range:
                    seen = {str(t["id"]) for t in fresh if t.get("id") is not None}
                    agg.add(
                        np.fromiter((t["timestamp"] for t in in_range), "int64", len(in_range)),
                        np.fromiter((t["price"] for t in in_range), "float64", len(in_range)),
                        np.fromiter((t["amount"] for t in in_range), "float64", len(in_range)),
                    )
                    last_ts = max(int(t["timestamp"]) for t in in_range)
                    candles = agg.pop_complete(last_ts)
                    if not candles.empty:
                        pending.append(candles)
                        buffered += len(candles)
                        progress.candles += len(candles)
                    progress.cursor = last_ts
                    self._report(progress)
                    if buffered >= self.flush_rows:
                        added += self._flush(symbol, timeframe, pending)
                        buffered = 0
                if trades and int(trades[-1]["timestamp"]) >= hi:
                    break  # the range is covered
                # A short page is not proof of the end: exchanges cut pages short under load,
                # and stopping there would store the last, half-seen minute as a complete
                # candle. Only a page with nothing new ends the range, and a short one only
                # after it came back the same on retries.
                if not fresh:
                    if len(trades) >= caps.trades_page_limit or stale >= _STALE_RETRIES:
                        break
                    stale += 1
                    continue
                stale = 0
                cursor = self._next_trades_cursor(trades, int(trades[-1]["timestamp"]))
                if cursor == (since, params):
                    break  # the cursor cannot move on (trades without ids): stop, never spin
                since, params = cursor
            # The trades reached `hi` (or the present): every bucket before `hi` is complete.
            tail = agg.pop_complete(hi)
            if not tail.empty:
                pending.append(tail)
                progress.candles += len(tail)
        finally:
            added += self._flush(symbol, timeframe, pending)
        return added

    def _next_trades_cursor(
        self, trades: list[dict[str, Any]], last_ts: int
    ) -> tuple[int, dict[str, Any]]:
        """Next ``since`` (and raw params) after a page, per the exchange's cursor style."""
        if self.adapter.capabilities.trades_cursor == "kraken_last" and trades:
            info = trades[-1].get("info")
            # ccxt appends Kraken's `last` (ns) to the last trade's raw row.
            if isinstance(info, list) and len(info) > 7 and info[-1]:
                return last_ts, {"since": str(info[-1])}
        return last_ts, {}
