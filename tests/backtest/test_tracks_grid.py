"""SymbolTrack.candle_at and close_decimal_at: arithmetic on the candle grid, as a search."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np

from kmg_autotrader.backtest.tracks import NONE, SymbolTrack


def _track(times: list[int], closes: np.ndarray) -> SymbolTrack:  # type: ignore[type-arg]
    ts = np.array(times, dtype=np.int64)
    zeros = np.zeros(len(ts))
    none = np.array([], dtype=np.intp)
    return SymbolTrack(
        "X/Y", ts, zeros, zeros, zeros, closes, zeros, [], [], np.array([0]), none, none
    )


def _times(rng: random.Random, n: int, step: int, gaps: float) -> list[int]:
    t = rng.randint(-50, 50)
    out = []
    for _ in range(n):
        out.append(t)
        if rng.random() < gaps:  # a gap, a misaligned candle or a short step
            t += rng.choice([step * rng.randint(2, 5), step + 1, 1])
        else:
            t += step
    return out


def test_candle_at_is_the_search_on_any_grid() -> None:
    rng = random.Random(1)
    for trial in range(240):
        times = _times(rng, rng.randint(0, 50), rng.choice([1, 5, 300]), (0, 0.05, 0.3)[trial % 3])
        if times and trial % 17 == 0:
            times = sorted([*times, times[0]])  # a repeated time: not a grid
        closes = np.array([rng.uniform(0.001, 1000) for _ in times])
        track = _track(times, closes)
        lo = (times[0] if times else 0) - 20
        hi = (times[-1] if times else 0) + 20
        ats = list(range(lo, hi))
        rng.shuffle(ats)  # the close memo must follow any order of questions
        for at in ats:
            want = int(np.searchsorted(track.timestamp, at, side="right")) - 1
            got = track.candle_at(at)
            assert got == want and type(got) is int, (times, at)
            price = track.close_decimal_at(at)
            if want == NONE:
                assert price is None
            else:
                expected = Decimal(repr(float(closes[want])))
                assert price is not None and str(price) == str(expected)
                assert track.close_decimal(want) is price  # the memo: one conversion


def test_close_decimal_is_the_float_repr() -> None:
    closes = np.array([0.1, 1e-8, 123456.789, 2.5, 0.30000000000000004])
    track = _track([0, 5, 10, 15, 20], closes)
    for k, value in enumerate(closes.tolist()):
        assert str(track.close_decimal(k)) == str(Decimal(repr(value)))
