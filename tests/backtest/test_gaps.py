"""Gaps in the data: the backtest's vectorised signals never bridge a hole in the candles.

The live bot (``autopilot/bot.py``) resets the strategy when a candle arrives with candles
missing before it (``ClosedCandle.gap_before``: more than one timeframe since the previous
candle of the symbol) and that candle starts a new warm-up. The backtester's per-candle
entries, exits and decisions must equal that candle-by-candle path exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kmg_autotrader.backtest.runner import BacktestRequest, run_backtest
from kmg_autotrader.backtest.tracks import SymbolTrack, pieces
from kmg_autotrader.domain import Candle
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.signals import SignalEngine, SignalParams
from kmg_autotrader.storage.candle_store import find_gaps
from tests.backtest.helpers import LOOSE

TF = 300_000


def _live_path(engine: SignalEngine, symbol: str, candles: pd.DataFrame) -> None:
    """Compare every candle's live decision (reset at each gap, as the bot does) with the
    track's vectorised one, flat and held."""
    track = SymbolTrack.build(symbol, candles, SignalEngine(engine.strategy_cls, engine.params))
    entries, exits = set(track.entries.tolist()), set(track.exits.tolist())
    previous: int | None = None
    for i, row in enumerate(candles.itertuples(index=False)):
        ts = int(row.timestamp)
        if previous is not None and ts - previous > TF:  # the feeds' gap_before
            engine.reset(symbol)
        previous = ts
        candle = Candle(ts, row.open, row.high, row.low, row.close, row.volume)
        held = bool(i % 2)
        live = engine.on_candle(symbol, candle, position_open=held)
        if held:
            assert (live.exit is not None) == (i in exits), i
        else:
            assert (live.candidate is not None) == (i in entries), i
        if i in (exits if held else entries):
            assert live == track.decision_at(i, position_open=held), i


def _holed(n: int, holes: list[tuple[int, int]], seed: int = 3) -> pd.DataFrame:
    """A random walk of ``n`` candles with ``holes`` (start row, missing count) cut out."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    frame = pd.DataFrame(
        {
            "timestamp": 1_672_531_200_000 + TF * np.arange(n, dtype=np.int64),
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.uniform(50, 150, n),
        }
    )
    drop = np.concatenate([np.arange(s, s + m) for s, m in holes])
    return frame.drop(index=drop).reset_index(drop=True)


def test_pieces_match_find_gaps() -> None:
    frame = _holed(400, [(100, 3), (250, 1), (251 + 1, 1)])
    ts = frame["timestamp"].to_numpy()
    starts = pieces(ts, TF)
    assert starts[0] == 0
    assert [int(ts[i]) for i in starts[1:]] == [g.end for g in find_gaps(ts, TF)]
    assert pieces(ts[:1], TF).tolist() == [0]


@pytest.mark.parametrize("strategy", ["default", "sma_cross_rsi"])
def test_synthetic_holes_equal_live_with_reset(strategy: str) -> None:
    # holes early (inside the first warm-up), mid-series, and two close together (a piece of
    # one candle between them)
    frame = _holed(3_000, [(30, 5), (1_200, 12), (2_000, 1), (2_002, 2)])
    params = SignalParams(confidence_threshold=0.3)
    _live_path(SignalEngine(strategy, params), "SYN/USDT", frame)


@pytest.mark.parametrize("strategy", ["default", "sma_cross_rsi"])
def test_xmr_btc_sample_equals_live_with_reset(strategy: str) -> None:
    frame = load_sample_set("btc-pairs")["XMR/BTC"]
    assert find_gaps(frame["timestamp"], TF)  # the sample has real holes
    _live_path(SignalEngine(strategy), "XMR/BTC", frame)


def test_xmr_btc_no_entry_from_indicators_bridging_the_gap() -> None:
    # run straight across the holes, the default strategy finds entries right after them
    # (candles 5069 and 5118) that a strategy re-warmed after each gap does not
    frame = load_sample_set("btc-pairs")["XMR/BTC"]
    engine = SignalEngine("default")
    bridged = set(engine.run_history("XMR/BTC", frame).entry_indices().tolist())
    track = SymbolTrack.build("XMR/BTC", frame, engine)
    assert {5069, 5118} <= bridged - set(track.entries.tolist())


async def test_backtest_runs_on_holed_frames() -> None:
    frames = {"SYN/USDT": _holed(3_000, [(1_200, 12), (2_000, 1)])}
    params = SignalParams(confidence_threshold=0.3)
    request = BacktestRequest(strategy="default", risk_params=LOOSE, signal_params=params)
    sparse = await run_backtest(dict(frames), request)
    dense = await run_backtest(dict(frames), request, dense=True)
    assert sparse.trades == dense.trades
    assert np.array_equal(sparse.equity, dense.equity)
