"""The equity curve, one point per candle, computed vectorised from the fills.

Between fills holdings do not change, so equity at every candle is cash plus each symbol's
holdings times its close — a cumulative sum over the fills and a ``searchsorted`` per symbol,
instead of marking the account candle by candle. A fill at candle ``k``'s open counts in
``k``'s point, which is marked at ``k``'s close.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kmg_autotrader.backtest.tracks import SymbolTrack
from kmg_autotrader.execution.paper.model import PaperTrade

Int64Array = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def timeline(tracks: Sequence[SymbolTrack]) -> Int64Array:
    """Every candle open time of any symbol, sorted, once."""
    if not tracks:
        return np.array([], dtype=np.int64)
    first = tracks[0].timestamp
    if all(np.array_equal(t.timestamp, first) for t in tracks[1:]):
        return first.copy()  # the usual case, without a concatenation of every symbol's times
    return np.unique(np.concatenate([t.timestamp for t in tracks]))


def _step(times: Int64Array, values: FloatArray, at: Int64Array) -> FloatArray:
    """Cumulative ``values`` as of each ``at`` (changes at ``times``, inclusive)."""
    if times.size == 0:
        return np.zeros(len(at))
    order = np.argsort(times, kind="stable")
    cum = np.concatenate(([0.0], np.cumsum(values[order])))
    return cum[np.searchsorted(times[order], at, side="right")]


def equity_curve(
    tracks: Sequence[SymbolTrack],
    fills: Iterable[PaperTrade],
    initial_cash: float,
    at: Int64Array,
) -> FloatArray:
    """Equity (quote currency) at the close of each candle of ``at``."""
    rows = [
        (t.symbol, t.timestamp, float(t.amount), float(t.price), float(t.fee), t.side == "buy")
        for t in fills
    ]
    times = np.array([r[1] for r in rows], dtype=np.int64)
    amount = np.array([r[2] for r in rows], dtype=np.float64)
    price = np.array([r[3] for r in rows], dtype=np.float64)
    fee = np.array([r[4] for r in rows], dtype=np.float64)
    buy = np.array([r[5] for r in rows], dtype=bool)
    cash_delta = np.where(buy, -amount * price, amount * price) - fee
    equity = initial_cash + _step(times, cash_delta, at)
    symbols = np.array([r[0] for r in rows], dtype=object)
    for track in tracks:
        mine = symbols == track.symbol
        if not mine.any():
            continue
        held = _step(times[mine], np.where(buy[mine], amount[mine], -amount[mine]), at)
        if np.array_equal(track.timestamp, at):
            close = track.close  # the symbol has a candle at every point
        else:
            idx = np.searchsorted(track.timestamp, at, side="right") - 1
            close = np.where(idx >= 0, track.close[np.clip(idx, 0, None)], track.open[0])
        held *= close
        equity += held
    return equity
