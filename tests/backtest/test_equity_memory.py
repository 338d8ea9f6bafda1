"""The equity curve's shortcuts for symbols on one shared candle grid give the same numbers as
the general path (symbols with gaps), and returning freed heap memory changes nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from kmg_autotrader.backtest.equity import equity_curve, timeline
from kmg_autotrader.backtest.runner import release_free_heap

STEP = 300_000


def _track(symbol: str, times: list[int], closes: list[float]) -> Any:
    return SimpleNamespace(
        symbol=symbol,
        timestamp=np.array(times, dtype=np.int64),
        open=np.array(closes, dtype=np.float64),
        close=np.array(closes, dtype=np.float64),
    )


def _fill(symbol: str, at: int, side: str, amount: float, price: float, fee: float) -> Any:
    return SimpleNamespace(
        symbol=symbol, timestamp=at, side=side, amount=amount, price=price, fee=fee
    )


def test_shared_grid_timeline_is_the_union() -> None:
    times = [0, STEP, 2 * STEP, 3 * STEP]
    a = _track("A/USDT", times, [1, 2, 3, 4])
    b = _track("B/USDT", times, [5, 6, 7, 8])
    assert np.array_equal(timeline([a, b]), np.array(times))
    c = _track("C/USDT", [STEP, 4 * STEP], [1, 1])
    assert list(timeline([a, c])) == [0, STEP, 2 * STEP, 3 * STEP, 4 * STEP]


def test_equity_same_on_shared_grid_and_with_gaps() -> None:
    times = [0, STEP, 2 * STEP, 3 * STEP]
    a = _track("A/USDT", times, [10.0, 11.0, 12.0, 13.0])
    fills = [
        _fill("A/USDT", STEP, "buy", 2.0, 10.5, 0.1),
        _fill("A/USDT", 3 * STEP, "sell", 2.0, 12.5, 0.1),
    ]
    # hand-checked: cash 100; bought 2 @ 10.5 (fee 0.1) at candle 1, sold @ 12.5 at candle 3
    expected = [100.0, 100 - 21.1 + 2 * 11.0, 100 - 21.1 + 2 * 12.0, 100 - 21.1 + 25.0 - 0.1]
    shared = equity_curve([a], fills, 100.0, timeline([a]))
    assert np.allclose(shared, expected)
    # a second symbol with a gap forces the general (searchsorted) path for A as well
    gap = _track("B/USDT", [0, 3 * STEP, 4 * STEP], [1.0, 1.0, 1.0])
    at = timeline([a, gap])
    general = equity_curve([a, gap], fills, 100.0, at)
    assert list(at) == [0, STEP, 2 * STEP, 3 * STEP, 4 * STEP]
    assert np.allclose(general[:4], expected)
    assert np.isclose(general[4], expected[3])  # A's last close carries forward


def test_release_free_heap_is_harmless() -> None:
    assert release_free_heap() in (True, False)
    assert release_free_heap() in (True, False)
