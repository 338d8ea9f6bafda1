"""One symbol's history as the event loop sees it: arrays, signal indices and searches.

Everything here is vectorised: the event loop asks "from candle ``k`` on, where is the next
candle on which something can happen?" and gets the answer from ``searchsorted`` or a
chunked scan of highs and lows, never from a Python step per candle.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from kmg_autotrader.signals.engine import Decision, HistoryRun, SignalEngine

IntArray = np.ndarray[Any, np.dtype[np.intp]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
NONE = -1  # "no such candle"
_PRICES = ("open", "high", "low", "close", "volume")


def _take(obj: Any, rows: IntArray, n: int) -> Any:
    """A dataclass instance with every length-``n`` array field restricted to ``rows``."""
    values = {
        f.name: getattr(obj, f.name)[rows]
        for f in fields(obj)
        if isinstance(getattr(obj, f.name), np.ndarray) and len(getattr(obj, f.name)) == n
    }
    return replace(obj, **values)


def compact_run(run: HistoryRun) -> tuple[HistoryRun, IntArray]:
    """``run`` restricted to the candles that carry an entry or an exit, and those candles.

    A decision at a candle reads only that candle's values and the previous candle's (rules
    explain themselves with both), so keeping those two rows of the few columns the rules use
    gives the very same :class:`~kmg_autotrader.signals.engine.Decision` — in a few percent of
    the memory of the full indicator frame. Index the result with ``searchsorted(rows, k)``.
    """
    frame = run.frame
    n = len(frame)
    wanted = np.array(frame.decisions.exit, dtype=bool)  # a mask: no sort as in union1d
    wanted[run.entry_rows] = True
    rows = np.flatnonzero(wanted)
    keep = set(_PRICES) | {name for rule in frame.rules.values() for name in rule.inputs}
    names = [name for name in sorted(keep) if name in frame.bars]
    bars = frame.bars.take(rows, names)  # previous values of these rows only, no full shift
    bars.cache_rows()  # each decision reads a row of plain floats
    small = replace(
        frame,
        timestamp=frame.timestamp[rows],
        bars=bars,
        regime=frame.regime[rows],
        hits={name: _take(h, rows, n) for name, h in frame.hits.items()},
        decisions=_take(frame.decisions, rows, n),
        stop_loss=frame.stop_loss[rows],
        take_profit=frame.take_profit[rows],
        expected_move=frame.expected_move[rows],
        indicators={},
    )
    entry_rows = np.searchsorted(rows, run.entry_rows).astype(np.intp)
    return replace(run, frame=small, entry_rows=entry_rows), rows


def pieces(timestamps: np.ndarray[Any, Any], timeframe_ms: int) -> IntArray:
    """Start index of every gap-free piece of a candle series (the first is 0).

    A candle opens a new piece when more than one timeframe separates it from the previous
    one — the live feeds' ``gap_before`` (:mod:`kmg_autotrader.autopilot.feeds`) and
    :func:`~kmg_autotrader.storage.candle_store.find_gaps` use the same test. After such a
    hole the live bot resets the strategy and the candle after the gap is the first of a new
    warm-up, so each piece is evaluated on its own.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(1, dtype=np.intp)
    after_gap = np.flatnonzero(np.diff(ts) > timeframe_ms) + 1
    return np.concatenate(([0], after_gap)).astype(np.intp)


@dataclass(slots=True)
class SymbolTrack:
    """Candles of one symbol (numpy arrays) with the strategy's entry and exit candle indices.

    The strategy runs on each gap-free piece of the history separately (see :func:`pieces`):
    ``runs[p]`` is piece ``p``'s compacted run, whose row ``j`` is candle ``rows[p][j]``
    (indices into the whole history), and ``starts[p]`` is the piece's first candle.
    ``cursor`` is the first candle whose close has not been considered yet; ``fed`` the last
    candle given to the exchange (-1: none).
    """

    symbol: str
    timestamp: np.ndarray[Any, np.dtype[np.int64]]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    runs: list[HistoryRun]
    rows: list[IntArray]
    starts: IntArray
    entries: IntArray
    exits: IntArray
    cursor: int = 0
    fed: int = -1
    # the event loop asks these once or twice per event: plain Python lists, sets and a dict
    # answer in ~0.1 µs where a numpy scalar search or index costs ~1 µs
    _entry_list: list[int] = field(init=False, repr=False, compare=False)
    _exit_list: list[int] = field(init=False, repr=False, compare=False)
    _entry_set: frozenset[int] = field(init=False, repr=False, compare=False)
    _exit_set: frozenset[int] = field(init=False, repr=False, compare=False)
    # candle index -> row of its piece's compacted run (ints only: no tuples for the collector)
    _decision_rows: dict[int, int] = field(init=False, repr=False, compare=False)
    # the candle times as evenly spaced runs (see candle_at): the step, each run's first
    # candle time and index; step 0 when the times are not increasing (a search then)
    _step: int = field(init=False, repr=False, compare=False)
    _run_times: list[int] = field(init=False, repr=False, compare=False)
    _run_starts: list[int] = field(init=False, repr=False, compare=False)
    # the last close converted by close_decimal: (candle index, its Decimal)
    _close_k: int = field(default=NONE, init=False, repr=False, compare=False)
    _close_d: Decimal = field(default=Decimal(0), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._entry_list = self.entries.tolist()
        self._exit_list = self.exits.tolist()
        self._entry_set = frozenset(self._entry_list)
        self._exit_set = frozenset(self._exit_list)
        self._decision_rows = {k: j for kept in self.rows for j, k in enumerate(kept.tolist())}
        ts = np.asarray(self.timestamp, dtype=np.int64)
        steps = np.diff(ts)
        step = int(steps.min()) if steps.size and steps.min() > 0 else 0
        # a run ends where the next candle is more than one step away (a gap in the data)
        breaks = np.flatnonzero(steps != step) + 1
        if step and len(breaks) > len(ts) // 8:
            step = 0  # hardly a grid: candle_at searches instead of keeping long lists
        self._step = step
        self._run_starts = [0, *breaks.tolist()] if step else []
        self._run_times = [int(ts[i]) for i in self._run_starts]

    @classmethod
    def build(cls, symbol: str, candles: pd.DataFrame, engine: SignalEngine) -> SymbolTrack:
        """Run the strategy over ``candles`` (vectorised, piece by piece between gaps in the
        data, as the live bot re-warms after one) and keep what the loop needs."""

        def col(name: str) -> FloatArray:
            return np.ascontiguousarray(candles[name].to_numpy(dtype=np.float64))

        timestamp = np.ascontiguousarray(candles["timestamp"].to_numpy(dtype=np.int64))
        starts = pieces(timestamp, engine.timeframe_ms)
        ends = np.append(starts[1:], len(timestamp))
        runs: list[HistoryRun] = []
        rows: list[IntArray] = []
        entries: list[IntArray] = []
        exits: list[IntArray] = []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            piece = candles if len(starts) == 1 else candles.iloc[start:end]
            full = engine.run_history(symbol, piece)
            entries.append(full.entry_indices() + start)
            exits.append(full.exit_indices() + start)
            run, kept = compact_run(full)
            del full
            runs.append(run)
            rows.append(np.ascontiguousarray(kept + start))
        return cls(
            symbol=symbol,
            timestamp=timestamp,
            open=col("open"),
            high=col("high"),
            low=col("low"),
            close=col("close"),
            volume=col("volume"),
            runs=runs,
            rows=rows,
            starts=starts,
            entries=np.ascontiguousarray(np.concatenate(entries).astype(np.intp)),
            exits=np.ascontiguousarray(np.concatenate(exits).astype(np.intp)),
        )

    def __len__(self) -> int:
        return len(self.timestamp)

    # next_entry and next_exit search inline (no shared helper): one call less per event

    def next_entry(self, start: int) -> int:
        """First candle ``>= start`` with an entry candidate that passed every filter."""
        entries = self._entry_list
        j = bisect_left(entries, start)
        return entries[j] if j < len(entries) else NONE

    def next_exit(self, start: int) -> int:
        """First candle ``>= start`` with an exit signal."""
        exits = self._exit_list
        j = bisect_left(exits, start)
        return exits[j] if j < len(exits) else NONE

    def is_entry(self, k: int) -> bool:
        """True when candle ``k`` has an accepted entry candidate."""
        return k in self._entry_set

    def decision_at(self, k: int, *, position_open: bool) -> Decision:
        """The signals decision on candle ``k`` (an entry or exit candle)."""
        j = self._decision_rows.get(k)
        if j is None:
            raise IndexError(f"{self.symbol}: candle {k} carries no entry or exit")
        # one piece (no gap in the data) is the usual case: no search for it
        p = 0 if len(self.runs) == 1 else int(self.starts.searchsorted(k, side="right")) - 1
        return self.runs[p].decision_at(j, position_open=position_open)

    def candle_at(self, at_ms: int) -> int:
        """Index of the last candle opened at or before ``at_ms`` (NONE: none yet).

        The equity mark asks this on every event for every symbol held: arithmetic on the
        evenly spaced runs of candle times (one run without gaps) instead of a numpy search.
        """
        step = self._step
        if not step:  # fewer than two candles, or times not increasing
            return int(self.timestamp.searchsorted(at_ms, side="right")) - 1
        times = self._run_times
        r = bisect_right(times, at_ms) - 1
        if r < 0:
            return NONE
        starts = self._run_starts
        k = starts[r] + (at_ms - times[r]) // step
        last = starts[r + 1] - 1 if r + 1 < len(starts) else len(self.timestamp) - 1
        return k if k < last else last  # a time in the gap after a run: the run's last candle

    def close_decimal(self, k: int) -> Decimal:
        """Close of candle ``k`` as a Decimal (the float's shortest repr, as the paper exchange
        reads candle values), kept until another candle is asked: the event loop, the
        portfolio state and the equity mark all ask for the candle just closed."""
        if k != self._close_k:
            self._close_d = Decimal(float.__repr__(self.close.item(k)))
            self._close_k = k
        return self._close_d

    def close_decimal_at(self, at_ms: int) -> Decimal | None:
        """:meth:`close_decimal` of :meth:`candle_at` (None: no candle yet), in one call.

        The equity mark asks it for every symbol held on every event; the usual grid, one
        run without gaps, is answered here without calling the other two.
        """
        if len(self._run_times) == 1:
            k = (at_ms - self._run_times[0]) // self._step
            if k < 0:
                return None
            last = len(self.timestamp) - 1
            if k > last:
                k = last
        else:
            k = self.candle_at(at_ms)
            if k < 0:
                return None
        if k != self._close_k:  # close_decimal, inline
            self._close_d = Decimal(float.__repr__(self.close.item(k)))
            self._close_k = k
        return self._close_d

    def is_exit(self, k: int) -> bool:
        """True when candle ``k`` has an exit signal."""
        return k in self._exit_set

    def next_touch(self, start: int, stop: float | None, target: float | None) -> int:
        """First candle ``>= start`` whose low reaches ``stop`` or whose high reaches ``target``
        (the checks the position tracker makes on every candle), scanning in growing chunks."""
        if stop is None and target is None:
            return NONE
        n = len(self.timestamp)
        lo = start
        size = 64
        while lo < n:
            hi = min(n, lo + size)
            hit = np.zeros(hi - lo, dtype=bool)
            if stop is not None:
                hit |= self.low[lo:hi] <= stop
            if target is not None:
                hit |= self.high[lo:hi] >= target
            found = np.flatnonzero(hit)
            if found.size:
                return lo + int(found[0])
            lo = hi
            size = min(size * 4, 1 << 16)
        return NONE
