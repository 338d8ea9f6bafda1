"""The backtest path: paper engine + manager + tracker over candles, on simulated time.

Checks the no-look-ahead rule (an order decided on candle t fills at candle t+1's open) and
that the in-memory path stays fast enough for a 10-symbol, one-year replay.
"""

from __future__ import annotations

import time
from decimal import Decimal

import numpy as np

from kmg_autotrader.domain import MarketInfo, Mode, OrderIntent, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution import (
    ExecutionConfig,
    ExecutionManager,
    MemoryStore,
    PaperEngine,
    PaperExchange,
    PaperSettings,
    PositionTracker,
    RetrySettings,
)

D = Decimal
STEP = 300_000


async def test_decision_on_candle_t_fills_at_next_open() -> None:
    market = MarketInfo("X/USDT", "X", "USDT", D("0.001"), D("0.01"))
    clock = SimulatedClock(0)
    exchange = PaperExchange(
        PaperEngine({"X/USDT": market}, clock=clock, balances={"USDT": D(10_000)})
    )
    store = MemoryStore()
    manager = ExecutionManager(exchange, store, clock=clock)
    exchange.on_bar("X/USDT", 0, 100, 101, 99, 100.5, 10)  # candle t
    clock.set(STEP)  # decided at the close of candle t
    intent = OrderIntent(Mode.PAPER, "X/USDT", Side.BUY, D(1), D("100.5"), None, None, STEP)
    assert (await manager.execute(intent)).status == "working"
    exchange.on_bar("X/USDT", 0, 100, 101, 99, 100.5, 10)  # replaying candle t: no fill
    assert [r.status for r in await manager.poll()] == ["working"]
    assert store.open_positions()[0].amount == 0
    exchange.on_bar("X/USDT", STEP, 103, 104, 102, 103.5, 10)  # candle t+1
    (report,) = await manager.poll()
    assert report.status == "filled"
    (fill,) = store.fills_for_order(report.orders[0].client_order_id)
    assert fill.price >= D(103) and fill.latency_ms == 0  # t+1 open, with slippage
    assert fill.slippage_bps is not None and fill.slippage_bps > 0


async def test_replay_speed() -> None:
    symbols = [f"S{i}/USDT" for i in range(3)]
    markets = {s: MarketInfo(s, s[:2], "USDT", D("0.0001"), D("0.01")) for s in symbols}
    clock = SimulatedClock(0)
    engine = PaperEngine(
        markets, clock=clock, balances={"USDT": D(10**9)}, settings=PaperSettings()
    )
    store = MemoryStore()
    manager = ExecutionManager(
        PaperExchange(engine),
        store,
        clock=clock,
        config=ExecutionConfig(retry=RetrySettings(initial_wait=0)),
    )
    tracker = PositionTracker(manager)
    rng = np.random.default_rng(3)
    bars = 10_000
    closes = [D(str(round(x, 2))) for x in 100 * np.exp(np.cumsum(rng.normal(0, 0.003, bars)))]
    lows = [c * D("0.998") for c in closes]
    highs = [c * D("1.002") for c in closes]
    started = time.perf_counter()
    for i in range(1, bars):
        clock.set(i * STEP)
        for s in symbols:
            engine.on_bar(s, i * STEP, closes[i - 1], highs[i], lows[i], closes[i], 1000)
            if manager.working:
                await manager.poll()
            await tracker.on_price(s, closes[i], low=lows[i], high=highs[i])
            if i % 100 == 0 and not store.open_positions(s):
                c = closes[i]
                await manager.execute(
                    OrderIntent(
                        Mode.PAPER, s, Side.BUY, D(1), c, c * D("0.98"), c * D("1.03"), i * STEP
                    )
                )
    elapsed = time.perf_counter() - started
    closed = [p for p in store.positions.values() if p.closed_at is not None]
    assert len(closed) > 50
    assert all(p.amount == D(1) for p in closed)  # a closed position keeps the size it sold
    assert elapsed < 5.0, f"{elapsed:.2f}s for {bars * len(symbols)} candle events"
