"""Replayed market data: candles re-stamped to venue time, forming candles, prices, books, trades.

The recorded candles are shifted by a whole number of days so that at least ``warmup`` of them
lie in the past when the venue starts (and candles keep their UTC time of day: 1h, 4h and 1d
buckets fall where they did). From then on a candle is *closed* once venue time passed its end
and *forming* while venue time is inside it; the forming candle's values follow a price path
through it (open → low → high → close for a rising candle, open → high → low → close for a
falling one, at a constant price speed), so limits and stops are touched inside a candle and the
candle ends exactly as recorded. After the last recorded candle the market is quiet: flat candles
at the last close with no volume and no trades (streams keep ticking, as an exchange's do).

Dialects read everything from here; the replay loop (``server.Venue``) moves time and calls the
listeners (:class:`MarketListener`): ``on_tick`` at every path vertex and at the current price,
``on_candle`` for each base candle that closed (``final=True``) and the forming one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

DAY_MS = 86_400_000
# After the recorded data ends the market goes quiet, not silent: flat candles at the last close,
# with no volume and no trades, as an exchange shows a market nobody trades (streams keep
# ticking, the next candle opens, so the last recorded one is seen to close). This long.
QUIET_AFTER_END_MS = 30 * DAY_MS
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": DAY_MS}
_VOLUME_QUANTUM = Decimal("1e-8")


class UnsupportedTimeframe(ValueError):
    """A timeframe the venue cannot serve (finer than the data, or not a multiple of it)."""


class Candle(NamedTuple):
    """One OHLCV candle in venue time (``ts`` = open time, UTC epoch ms)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class SynthTrade(NamedTuple):
    """A public trade synthesised from a candle (4 per candle: the path's vertices)."""

    id: int
    ts: int
    price: Decimal
    amount: Decimal
    side: str  # "buy" on an uptick, "sell" on a downtick


class MarketListener(Protocol):
    """What the replay loop calls (dialects broadcast to WS clients; accounts match orders)."""

    async def on_tick(self, symbol: str, price: Decimal, ts: int) -> None:
        """A trade price at venue time ``ts``."""
        ...

    async def on_candle(self, symbol: str, row: Candle, final: bool) -> None:
        """A base-timeframe candle: closed (``final``) or its forming state so far."""
        ...


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds of ``1m``/``5m``/``1h``/``4h``/``1d``…; raises UnsupportedTimeframe."""
    unit, count = timeframe[-1:], timeframe[:-1]
    if unit not in _UNIT_MS or not count.isdigit() or int(count) <= 0:
        raise UnsupportedTimeframe(f"unsupported timeframe {timeframe!r}")
    return int(count) * _UNIT_MS[unit]


def _path(o: float, h: float, lo: float, c: float) -> tuple[float, float, float, float]:
    return (o, lo, h, c) if c >= o else (o, h, lo, c)


def _fractions(path: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Time fraction of each vertex at a constant price speed (equal thirds for a flat candle)."""
    legs = [abs(path[1] - path[0]), abs(path[2] - path[1]), abs(path[3] - path[2])]
    total = sum(legs)
    if total <= 0:
        return (0.0, 1 / 3, 2 / 3, 1.0)
    return (0.0, legs[0] / total, (legs[0] + legs[1]) / total, 1.0)


def _price_on_path(
    path: tuple[float, ...], fracs: tuple[float, ...], f: float
) -> tuple[float, int]:
    """(price at fraction ``f``, index of the last vertex reached)."""
    if f >= 1.0:
        return path[3], 3
    for k in range(3):
        a, b = fracs[k], fracs[k + 1]
        if f < b:
            share = 0.0 if b <= a else (f - a) / (b - a)
            return path[k] + (path[k + 1] - path[k]) * share, k
    return path[3], 3


@dataclass
class _Series:
    ts: np.ndarray  # int64, venue time
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    v: np.ndarray

    def row(self, i: int) -> Candle:
        return Candle(
            int(self.ts[i]),
            float(self.o[i]),
            float(self.h[i]),
            float(self.lo[i]),
            float(self.c[i]),
            float(self.v[i]),
        )


def infer_step_ms(frames: Mapping[str, pd.DataFrame]) -> int:
    """The data's base timeframe: ``attrs['timeframe']`` when set, else the smallest spacing."""
    steps: set[int] = set()
    for symbol, frame in frames.items():
        tf = frame.attrs.get("timeframe")
        if tf:
            steps.add(timeframe_ms(str(tf)))
            continue
        ts = frame["timestamp"].to_numpy(dtype="int64")
        if len(ts) < 2:
            raise ValueError(f"{symbol}: need at least 2 candles to tell the timeframe")
        steps.add(int(np.diff(ts).min()))
    if len(steps) != 1:
        raise ValueError(f"all symbols must share one timeframe, got {sorted(steps)} ms")
    return steps.pop()


class MarketState:
    """Candles of every symbol in venue time, and what they look like at a venue time ``now``.

    ``frames``: symbol → candles (``timestamp`` ms + ``open high low close volume``), one base
    timeframe for all. ``start_ms``: venue time at start. ``warmup``: at least this many
    candles lie in the past at start. ``price_steps``: symbol → tick size (from the market
    rules) to round prices on the path inside a candle. ``shift_ms``: the re-stamping shift
    to use (a restarted venue keeps its timeline) instead of the one ``warmup`` implies.
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        start_ms: int,
        warmup: int = 1000,
        price_steps: Mapping[str, Decimal] | None = None,
        shift_ms: int | None = None,
    ) -> None:
        if not frames:
            raise ValueError("no candles to replay")
        self.step_ms = infer_step_ms(frames)
        if DAY_MS % self.step_ms:
            raise ValueError(f"base timeframe {self.step_ms} ms does not divide a day")
        self.warmup = int(warmup)
        self.price_steps = {s: Decimal(p) for s, p in (price_steps or {}).items()}
        first = min(int(f["timestamp"].iloc[0]) for f in frames.values() if len(f))
        opening = start_ms // self.step_ms * self.step_ms  # the candle forming at start
        if shift_ms is None:
            self.shift_ms = (opening - first - self.warmup * self.step_ms) // DAY_MS * DAY_MS
        else:  # a restarted venue resumes its timeline
            self.shift_ms = int(shift_ms)
        self.start_ms = start_ms
        self._series: dict[str, _Series] = {}
        self._data_end: dict[str, int] = {}  # close time of the last recorded candle
        remaining = 0
        for symbol, frame in frames.items():
            ts = frame["timestamp"].to_numpy(dtype="int64") + self.shift_ms
            o, h, lo, c, v = (
                frame[k].to_numpy(dtype="float64")
                for k in ("open", "high", "low", "close", "volume")
            )
            remaining = max(remaining, int((ts > start_ms).sum()))
            self._data_end[symbol] = int(ts[-1]) + self.step_ms
            self._series[symbol] = _quiet_after(_Series(ts, o, h, lo, c, v), self.step_ms)
        if remaining == 0 and shift_ms is None:
            raise ValueError(
                f"warmup {self.warmup} leaves no candle to replay (the data has "
                f"{max(len(f) for f in frames.values())} candles)"
            )
        self._resampled: dict[tuple[str, int], _Series] = {}
        self._listeners: list[MarketListener] = []

    # ---- listeners and replay ---------------------------------------------------------------

    def subscribe(self, listener: MarketListener) -> None:
        """Call ``listener`` on every tick and candle (in subscription order: the venue
        subscribes the accounts first, so fills happen before the dialect broadcasts)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def unsubscribe(self, listener: MarketListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def replay(self, after: int, until: int) -> None:
        """Tell the listeners what happened in ``(after, until]``, in time order: the path's
        ticks, each base candle's close (``final``), then the forming candle and the price at
        ``until``. ``after == until`` repeats only the current state (a first look)."""
        for symbol in self._series:
            events: list[tuple[int, int, Decimal | Candle]] = [
                (ts, 0, price) for ts, price in self.path_ticks(symbol, after, until)
            ]
            events += [(c.ts + self.step_ms, 1, c) for c in self.base_candles(symbol, after, until)]
            events.sort(key=lambda e: (e[0], e[1]))
            for ts, _, item in events:
                for listener in list(self._listeners):
                    if isinstance(item, Candle):
                        await listener.on_candle(symbol, item, True)
                    else:
                        await listener.on_tick(symbol, item, ts)
            forming = self.forming(symbol, until)
            if forming is not None:
                for listener in list(self._listeners):
                    await listener.on_candle(symbol, forming, False)

    # ---- metadata ---------------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """Symbols replayed, in data order."""
        return list(self._series)

    def first_ms(self, symbol: str) -> int:
        """Open time of the first candle of ``symbol`` (venue time)."""
        return int(self._series[symbol].ts[0])

    def end_ms(self, symbol: str) -> int:
        """Close time of the last recorded candle of ``symbol``: the data ends there (then the
        market is quiet: flat candles at the last close, no volume, no trades)."""
        return self._data_end[symbol]

    def last_ms(self, symbol: str) -> int:
        """Close time of the last candle the venue serves (the quiet ones included)."""
        return int(self._series[symbol].ts[-1]) + self.step_ms

    def finished(self, now: int) -> bool:
        """True once every symbol's last recorded candle has closed."""
        return all(now >= self.end_ms(s) for s in self._series)

    def check_timeframe(self, timeframe: str) -> int:
        """ms of ``timeframe`` if the venue can serve it (a multiple of the base, dividing a day
        or whole days), else raises :class:`UnsupportedTimeframe`."""
        ms = timeframe_ms(timeframe)
        if ms < self.step_ms or ms % self.step_ms:
            raise UnsupportedTimeframe(
                f"timeframe {timeframe} is not a multiple of the venue's {self.step_ms // 60_000}m"
                " candles"
            )
        if (ms < DAY_MS and DAY_MS % ms) or (ms > DAY_MS and ms % DAY_MS):
            raise UnsupportedTimeframe(f"timeframe {timeframe} does not align with days")
        return ms

    def _symbol(self, symbol: str) -> _Series:
        try:
            return self._series[symbol]
        except KeyError:
            raise KeyError(f"the venue does not replay {symbol}") from None

    # ---- prices -----------------------------------------------------------------------------

    def _round(self, symbol: str, price: float) -> float:
        step = self.price_steps.get(symbol)
        if step is None or step <= 0:
            return price
        q = (Decimal(repr(price)) / step).quantize(Decimal(1), ROUND_HALF_EVEN) * step
        return float(q)

    def _forming_index(self, series: _Series, now: int) -> int:
        """Index of the last candle opened at or before ``now`` (-1: none yet)."""
        return int(np.searchsorted(series.ts, now, side="right")) - 1

    def _partial(self, symbol: str, series: _Series, i: int, now: int) -> Candle:
        """Candle ``i`` as it looks at ``now`` (final once closed)."""
        row = series.row(i)
        f = (now - row.ts) / self.step_ms
        if f >= 1.0:
            return row
        path = _path(row.open, row.high, row.low, row.close)
        fracs = _fractions(path)
        price, k = _price_on_path(path, fracs, f)
        price = self._round(symbol, price)
        seen = [*path[: k + 1], price]
        return Candle(row.ts, row.open, max(seen), min(seen), price, row.volume * f)

    def last_price(self, symbol: str, now: int) -> Decimal | None:
        """The trade price at ``now`` (None before the first candle)."""
        series = self._symbol(symbol)
        i = self._forming_index(series, now)
        if i < 0:
            return None
        return Decimal(repr(self._partial(symbol, series, i, now).close))

    def path_ticks(self, symbol: str, after: int, until: int) -> list[tuple[int, Decimal]]:
        """(ts, price) of every path vertex in ``(after, until]``, then the price at ``until``.

        The replay loop feeds these to the engines so a move through a candle's low or high
        between two ticks still fills the limits and stops it crossed."""
        series = self._symbol(symbol)
        out: list[tuple[int, Decimal]] = []
        lo = max(0, int(np.searchsorted(series.ts, after, side="right")) - 1)
        hi = self._forming_index(series, until)
        for i in range(lo, hi + 1):
            row = series.row(i)
            path = _path(row.open, row.high, row.low, row.close)
            fracs = _fractions(path)
            for k in range(4):
                ts = row.ts + (round(fracs[k] * self.step_ms) if k < 3 else self.step_ms - 1)
                if after < ts <= until:
                    out.append((ts, Decimal(repr(path[k]))))
        last = self.last_price(symbol, until)
        if last is not None:
            out.append((until, last))
        return out

    # ---- candles ----------------------------------------------------------------------------

    def _series_for(self, symbol: str, ms: int) -> _Series:
        base = self._symbol(symbol)
        if ms == self.step_ms:
            return base
        key = (symbol, ms)
        cached = self._resampled.get(key)
        if cached is None:
            cached = self._resampled[key] = _resample(base, ms)
        return cached

    def visible(
        self,
        symbol: str,
        timeframe: str,
        now: int,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
    ) -> list[Candle]:
        """Candles of ``timeframe`` opened at or before ``now``: closed ones plus the forming
        one (partial). ``since``/``until`` bound the open time (inclusive); ``limit`` keeps the
        first ``limit`` from ``since``, or the latest ``limit`` without ``since``."""
        ms = self.check_timeframe(timeframe)
        series = self._series_for(symbol, ms)
        end = int(np.searchsorted(series.ts, now, side="right"))
        if until is not None:
            end = min(end, int(np.searchsorted(series.ts, until, side="right")))
        begin = 0 if since is None else int(np.searchsorted(series.ts, since, side="left"))
        if limit is not None:
            if since is None:
                begin = max(begin, end - limit)
            else:
                end = min(end, begin + limit)
        rows = [series.row(i) for i in range(begin, end)]
        if rows and rows[-1].ts + ms > now:
            rows[-1] = self.bucket(symbol, timeframe, rows[-1].ts, now) or rows[-1]
        return rows

    def bucket(self, symbol: str, timeframe: str, ts: int, now: int) -> Candle | None:
        """The ``timeframe`` candle opening at ``ts`` as seen at ``now`` (None if not opened)."""
        ms = self.check_timeframe(timeframe)
        base = self._symbol(symbol)
        if ts > now:
            return None
        if ts + ms <= now:  # closed: the cached aggregate
            series = self._series_for(symbol, ms)
            i = int(np.searchsorted(series.ts, ts, side="left"))
            if i < len(series.ts) and int(series.ts[i]) == ts:
                return series.row(i)
            return None
        first = int(np.searchsorted(base.ts, ts, side="left"))
        last = self._forming_index(base, now)
        if last < first:
            return None
        parts = [base.row(i) for i in range(first, last)]
        parts.append(self._partial(symbol, base, last, now))
        return Candle(
            ts,
            parts[0].open,
            max(p.high for p in parts),
            min(p.low for p in parts),
            parts[-1].close,
            sum(p.volume for p in parts),
        )

    def base_candles(self, symbol: str, after: int, until: int) -> list[Candle]:
        """Base candles that closed in ``(after, until]`` (close time = ts + step), in order."""
        series = self._symbol(symbol)
        lo = int(np.searchsorted(series.ts + self.step_ms, after, side="right"))
        hi = int(np.searchsorted(series.ts + self.step_ms, until, side="right"))
        return [series.row(i) for i in range(lo, hi)]

    def forming(self, symbol: str, now: int) -> Candle | None:
        """The base candle forming at ``now`` (None before the first / after the last)."""
        series = self._symbol(symbol)
        i = self._forming_index(series, now)
        if i < 0 or int(series.ts[i]) + self.step_ms <= now:
            return None
        return self._partial(symbol, series, i, now)

    # ---- book and trades --------------------------------------------------------------------

    def order_book(self, symbol: str, now: int, depth: int = 5) -> dict[str, list[list[Decimal]]]:
        """A book around the last price: best bid = last, best ask = last + one price step,
        ``depth`` levels a step apart, each as deep as the last closed candle's volume."""
        last = self.last_price(symbol, now)
        if last is None:
            return {"bids": [], "asks": []}
        step = self.price_steps.get(symbol) or Decimal("0.01")
        series = self._symbol(symbol)
        i = max(0, self._forming_index(series, now) - 1)
        size = Decimal(repr(max(float(series.v[i]), 1.0))).quantize(_VOLUME_QUANTUM, ROUND_DOWN)
        bids = [[last - step * k, size] for k in range(depth) if last - step * k > 0]
        asks = [[last + step * (k + 1), size] for k in range(depth)]
        return {"bids": bids, "asks": asks}

    def trades(self, symbol: str, since: int, until: int) -> list[SynthTrade]:
        """Public trades with ``since <= ts <= until``: 4 per candle (its path's vertices, the
        close at ``ts + step - 1``), the candle's volume split so they aggregate back to it."""
        series = self._symbol(symbol)
        lo = max(0, int(np.searchsorted(series.ts, since, side="right")) - 1)
        hi = self._forming_index(series, until)
        out: list[SynthTrade] = []
        for i in range(lo, hi + 1):
            row = series.row(i)
            if row.volume <= 0:
                continue  # nobody traded (the quiet market after the data)
            path = _path(row.open, row.high, row.low, row.close)
            fracs = _fractions(path)
            total = Decimal(repr(row.volume))
            quarter = (total / 4).quantize(_VOLUME_QUANTUM, ROUND_DOWN)
            amounts = [quarter, quarter, quarter, total - 3 * quarter]
            times = [row.ts + round(fracs[k] * self.step_ms) for k in range(3)]
            times.append(row.ts + self.step_ms - 1)
            for k in range(1, 4):  # strictly increasing inside the candle
                times[k] = min(max(times[k], times[k - 1] + 1), row.ts + self.step_ms - 4 + k)
            prev = float(series.c[i - 1]) if i > 0 else path[0]
            for k in range(4):
                if since <= times[k] <= until:
                    side = "buy" if path[k] >= prev else "sell"
                    out.append(
                        SynthTrade(
                            i * 4 + k + 1, times[k], Decimal(repr(path[k])), amounts[k], side
                        )
                    )
                prev = path[k]
        return out


def _quiet_after(series: _Series, step_ms: int) -> _Series:
    """``series`` followed by :data:`QUIET_AFTER_END_MS` of flat, empty candles at its last
    close."""
    count = QUIET_AFTER_END_MS // step_ms
    last_ts, last_close = int(series.ts[-1]), float(series.c[-1])
    flat = np.full(count, last_close)
    return _Series(
        np.concatenate([series.ts, last_ts + step_ms * np.arange(1, count + 1, dtype="int64")]),
        np.concatenate([series.o, flat]),
        np.concatenate([series.h, flat]),
        np.concatenate([series.lo, flat]),
        np.concatenate([series.c, flat]),
        np.concatenate([series.v, np.zeros(count)]),
    )


def _resample(base: _Series, ms: int) -> _Series:
    """Aggregate base candles into ``ms`` buckets aligned to the epoch (UTC)."""
    keys = base.ts // ms * ms
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    return _Series(
        keys[starts].astype("int64"),
        base.o[starts],
        np.maximum.reduceat(base.h, starts),
        np.minimum.reduceat(base.lo, starts),
        base.c[ends - 1],
        np.add.reduceat(base.v, starts),
    )
