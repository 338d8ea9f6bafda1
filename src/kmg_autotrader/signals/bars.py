"""A view of indicator values at some candles and at the candle before each.

Rules, regimes and filters are written once, as numpy expressions over a :class:`Bars`.
The backtest hands them a whole history (N rows), the live path one row, so both paths run the
very same code and take the same decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from kmg_autotrader.signals.indicators.nodes import NAN, FloatArray

BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


def shift1(values: FloatArray) -> FloatArray:
    """``values`` moved one row later (row 0 becomes NaN): the previous candle's value."""
    out = np.empty_like(values)
    if len(values):
        out[0] = NAN
        out[1:] = values[:-1]
    return out


class Bars:
    """Current values (``bars["rsi"]``) and previous-candle values (``bars.prev("rsi")``)."""

    __slots__ = ("_cur", "_names", "_prev", "_prev_src", "_rows", "size")

    def __init__(
        self,
        cur: Mapping[str, FloatArray],
        prev: Mapping[str, FloatArray] | None = None,
    ) -> None:
        self._cur = cur
        self._prev_src = prev
        self._prev: dict[str, FloatArray] = {}
        self._names: tuple[str, ...] = ()
        self._rows: list[tuple[float, ...]] | None = None
        first = next(iter(cur.values()))
        self.size = len(first)

    @classmethod
    def from_rows(cls, row: Mapping[str, float], prev_row: Mapping[str, float] | None) -> Bars:
        """One-row view for the live path (``prev_row`` None before the first candle)."""
        cur = {k: np.array([v], dtype=np.float64) for k, v in row.items()}
        prev = {
            k: np.array([NAN if prev_row is None else prev_row.get(k, NAN)], dtype=np.float64)
            for k in row
        }
        return cls(cur, prev)

    def __getitem__(self, name: str) -> FloatArray:
        return self._cur[name]

    def __contains__(self, name: str) -> bool:
        return name in self._cur

    def prev(self, name: str) -> FloatArray:
        """Value of ``name`` on the previous candle (NaN where there is none)."""
        cached = self._prev.get(name)
        if cached is None:
            cached = self._prev_src[name] if self._prev_src is not None else shift1(self[name])
            self._prev[name] = cached
        return cached

    def take(self, index: np.ndarray[Any, Any], names: Iterable[str] | None = None) -> Bars:
        """The same view restricted to rows ``index`` (previous values stay aligned) and to the
        columns ``names`` (default: all)."""
        columns = self._cur if names is None else {k: self._cur[k] for k in names}
        cur = {k: v[index] for k, v in columns.items()}
        rows = np.arange(self.size)[index]  # plain row numbers, whatever form ``index`` has
        before, first = rows - 1, rows == 0
        has_first = bool(first.any())
        prev: dict[str, FloatArray] = {}
        for k, v in columns.items():
            known = self._prev.get(k)
            if known is None and self._prev_src is not None:
                known = self.prev(k)
            if known is not None:
                prev[k] = known[index]
            else:  # shift1(v)[index] without shifting the whole column
                prev[k] = taken = v[before]
                if has_first:
                    taken[first] = NAN
        return Bars(cur, prev)

    def cache_rows(self) -> None:
        """Convert every current value to a plain float now, for :meth:`row` to read.

        Worth it for a small view read row by row many times (the backtest's compacted
        decision rows): one ``tolist`` per column instead of a numpy scalar per value read,
        and the rows as tuples, so a row's dict is built by ``dict(zip(...))`` in C.
        """
        self._names = tuple(self._cur)
        self._rows = list(zip(*(v.tolist() for v in self._cur.values()), strict=True))

    def row(self, i: int) -> dict[str, float]:
        """Plain floats of row ``i``."""
        if self._rows is not None:
            return dict(zip(self._names, self._rows[i], strict=True))
        return {k: v.item(i) for k, v in self._cur.items()}  # item(): no numpy scalar

    def prev_row(self, i: int) -> dict[str, float]:
        """Plain floats of the candle before row ``i``."""
        prev = self._prev
        try:  # the cache of previous-candle columns, once it holds them all
            return {k: float(prev[k][i]) for k in self._cur}
        except KeyError:  # first call: fill it
            return {k: float(self.prev(k)[i]) for k in self._cur}

    def prev_view(self, i: int) -> Mapping[str, float]:
        """:meth:`prev_row` as a read-only mapping that converts a value only when it is read
        (most rules explain themselves with the current candle alone)."""
        return _PrevRow(self, i)


class _PrevRow(Mapping[str, float]):
    """Lazy view of the previous-candle values of one row of a :class:`Bars`."""

    __slots__ = ("_bars", "_i")

    def __init__(self, bars: Bars, i: int) -> None:
        self._bars = bars
        self._i = i

    def __getitem__(self, name: str) -> float:
        if name not in self._bars._cur:
            raise KeyError(name)
        return float(self._bars.prev(name)[self._i])

    def __contains__(self, name: object) -> bool:
        return name in self._bars._cur

    def __iter__(self) -> Iterator[str]:
        return iter(self._bars._cur)

    def __len__(self) -> int:
        return len(self._bars._cur)

    def __repr__(self) -> str:
        return repr(dict(self))
