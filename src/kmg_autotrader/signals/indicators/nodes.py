"""A TA-Lib indicator that can be warmed up on a history and then fed one value at a time.

TA-Lib 0.8 ships native streaming handles (``talib._ta_lib.RSI_Stream`` …): ``open_and_fill``
runs the batch algorithm over a history and keeps its state, ``update`` advances it by one
value. The batch output and the streamed values are bit-identical, which is the property the
live path relies on to take the same decisions as the backtest.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import talib
from talib import _ta_lib as _ta

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

NAN = math.nan

#: Functions whose stream state is exactly their last ``lookback + 1`` inputs: a pure selection
#: over the window, no running sum carried from older rows. TA-Lib's batch function computes
#: their outputs about 4x faster than the stream's fill does, so on a plain history (see
#: :func:`_plain`) :meth:`TalibNode.warm_up` takes the outputs from the batch function and opens
#: the stream on the last window only.
_WINDOW_STATE = frozenset({"MAX", "MIN"})


def _first_valid(arrays: tuple[FloatArray, ...]) -> int:
    """Index of the first row where every input is finite (TA-Lib skips leading NaNs too)."""
    length = len(arrays[0])
    lo, size = 0, 1024
    while lo < length:  # look at growing blocks: the answer is nearly always near the start
        hi = min(length, lo + size)
        ok = np.ones(hi - lo, dtype=bool)
        for arr in arrays:
            ok &= ~np.isnan(arr[lo:hi])
        idx = np.flatnonzero(ok)
        if idx.size:
            return lo + int(idx[0])
        lo, size = hi, size * 4
    return length


def _plain(arrays: tuple[FloatArray, ...]) -> bool:
    """True when every value is finite and non-zero: equal values then have equal bits, so any
    max/min algorithm gives the same output bits (the batch and stream algorithms break ties
    of 0.0 and -0.0 differently, and treat a NaN inside the history differently)."""
    return all(bool(np.isfinite(arr).all() and arr.all()) for arr in arrays)


@cache  # every strategy instance (one per symbol) builds the same nodes: ask TA-Lib once
def _lookback(name: str, named: tuple[tuple[str, Any], ...]) -> int:
    """TA-Lib's lookback of function ``name`` with the parameters ``named``."""
    # the compiled Function class that ``talib.abstract`` wraps: importing ``talib.abstract``
    # builds a Function for every TA-Lib function (~15 ms of start-up) to read one lookback
    function = _ta.Function(name, getattr(_ta, name), **dict(named))  # type: ignore[attr-defined]
    return int(function.lookback)


class TalibNode:
    """One TA-Lib function with fixed parameters, usable on a history and incrementally.

    ``n_outputs`` is 1 for most functions (BBANDS has 3). Inputs may start with NaNs (derived
    series that warm up); those rows are skipped, exactly as the batch function does.
    """

    __slots__ = ("_batch", "_buffer", "_cls", "_lookback", "_n_out", "_params", "_stream", "name")

    def __init__(self, name: str, *params: Any, n_outputs: int = 1, **named: Any) -> None:
        self.name = name
        self._cls = getattr(_ta, f"{name}_Stream")
        self._batch = getattr(_ta, name) if name in _WINDOW_STATE else None
        self._params = params
        self._n_out = n_outputs
        self._lookback = _lookback(name, tuple(sorted(named.items())))
        self._stream: Any = None
        self._buffer: list[tuple[float, ...]] = []
        if not hasattr(talib, name):  # pragma: no cover - guards a typo in a function name
            raise ValueError(f"TA-Lib has no function {name}")

    @property
    def lookback(self) -> int:
        """Number of leading inputs without an output (TA-Lib's lookback)."""
        return self._lookback

    def _nan_out(self, length: int) -> tuple[FloatArray, ...]:
        return tuple(np.full(length, NAN) for _ in range(self._n_out))

    def warm_up(self, *inputs: FloatArray) -> tuple[FloatArray, ...]:
        """Run over a whole history, keep the state, return every output as full-length arrays."""
        length = len(inputs[0])
        start = _first_valid(inputs)
        tail = tuple(np.ascontiguousarray(arr[start:], dtype=np.float64) for arr in inputs)
        self._stream = None
        self._buffer = []
        if length - start <= self._lookback:
            self._buffer = [tuple(float(a[i]) for a in tail) for i in range(length - start)]
            return self._nan_out(length)
        if self._batch is not None and _plain(tail):
            window = tuple(arr[-(self._lookback + 1) :] for arr in tail)
            self._stream, _ = self._cls.open_and_fill(*window, *self._params)
            filled = self._batch(*tail, *self._params)
        else:
            self._stream, filled = self._cls.open_and_fill(*tail, *self._params)
        outs = filled if isinstance(filled, tuple) else (filled,)
        if start == 0:
            return tuple(np.asarray(o, dtype=np.float64) for o in outs)
        result = self._nan_out(length)
        for full, part in zip(result, outs, strict=True):
            full[start:] = part
        return result

    def update(self, *values: float) -> tuple[float, ...]:
        """Feed one row of inputs, return this row's outputs (NaN while warming up)."""
        if self._stream is not None:
            out = self._stream.update(*values)
            return out if isinstance(out, tuple) else (out,)
        if not self._buffer and any(math.isnan(v) for v in values):
            return (NAN,) * self._n_out  # still inside the input's own warm-up
        self._buffer.append(values)
        if len(self._buffer) <= self._lookback:
            return (NAN,) * self._n_out
        columns = tuple(np.array(col, dtype=np.float64) for col in zip(*self._buffer, strict=True))
        stream, filled = self._cls.open_and_fill(*columns, *self._params)
        self._stream = stream
        self._buffer = []
        outs = filled if isinstance(filled, tuple) else (filled,)
        return tuple(float(o[-1]) for o in outs)

    def copy(self) -> TalibNode:
        """An independent copy of this node and its state (TA-Lib clones the C handle)."""
        clone = object.__new__(TalibNode)
        clone.name = self.name
        clone._cls = self._cls
        clone._batch = self._batch
        clone._params = self._params
        clone._n_out = self._n_out
        clone._lookback = self._lookback
        clone._stream = None if self._stream is None else self._stream.copy()
        clone._buffer = list(self._buffer)
        return clone
