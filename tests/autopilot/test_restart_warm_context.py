"""Issue 18.15: after a (re)start the advisor's market context is warmed from the candle store.

Regression: the bot warmed its strategy from the stored candles but not the advisor's candle
history, so for a day after every restart each prompt said "n/a" for the 1 h / 4 h / 24 h
changes and the prompt hash (the replay key) differed from the one a backtest computes.

``run_live`` (PAPER) against the fake Binance on 127.0.0.1: the warm-up download stores the
history, the start-up warms from it; right after the start the context a candidate would get
already describes a full day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from kmg_autotrader.advisor.context import CandleSummary
from kmg_autotrader.autopilot.runner import run_live
from kmg_autotrader.autopilot.wiring import BotRuntime
from kmg_autotrader.config import Settings, load_settings
from kmg_autotrader.domain import Candidate, Mode, Regime, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.storage.repositories import Repositories
from tests.fakes.fake_exchange_orders import FakeOrderExchange
from tests.fakes.fake_llm_server import FakeLlmServer

TF = 300_000
WARMUP = 600
ROW = 3_000  # sample row of the candle open at the start


@pytest.fixture
async def fake() -> AsyncIterator[FakeOrderExchange]:
    frame = load_sample_set("btc-usdt")["BTC/USDT"]
    rows = frame.iloc[ROW - WARMUP - 5 : ROW + 2].reset_index(drop=True)
    open_now = int(time.time() * 1000) // TF * TF
    rows["timestamp"] = open_now + (rows.index - (WARMUP + 5)) * TF
    server = await FakeOrderExchange(now_ms=open_now + TF).start()
    server.engine.clock = SimulatedClock(open_now + TF)
    server.set_klines("BTCUSDT", "5m", rows)
    server.trade(Decimal(str(rows["close"].iloc[WARMUP + 5])))
    try:
        yield server
    finally:
        await server.stop()


async def _start_and_capture(settings: Settings, clock: SimulatedClock) -> BotRuntime:
    seen: list[BotRuntime] = []

    async def capture(
        _settings: Settings, _repos: Repositories, runtime: BotRuntime
    ) -> Callable[[], Awaitable[None]]:
        seen.append(runtime)

        async def stop_nothing() -> None:
            return None

        return stop_nothing

    stop = asyncio.Event()
    task = asyncio.create_task(
        run_live(
            settings, live_flag=False, web=capture, stop=stop, warmup_candles=WARMUP, clock=clock
        )
    )
    try:
        for _ in range(1000):
            if seen or task.done():
                break
            await asyncio.sleep(0.02)
        assert seen, task.exception() if task.done() else "the bot did not start"
        return seen[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_after_a_start_the_advisor_context_describes_a_full_day(
    fake: FakeOrderExchange, tmp_path: Path
) -> None:
    clock = fake.engine.clock
    assert isinstance(clock, SimulatedClock)
    with FakeLlmServer() as llm:
        settings = load_settings(
            None,
            data_dir=tmp_path / "data",
            trading_mode=Mode.PAPER,
            exchange_api_url=fake.base,
            symbols=["BTC/USDT"],
            timeframe="5m",
            advisor_mode="advisory",
            openai_base_url=llm.base_url,
            openai_api_key="sk-test-not-a-real-key-000",
        )
        runtime = await _start_and_capture(settings, clock)
    history = runtime.bot.p.history.recent("BTC/USDT")
    assert len(history) == runtime.bot.p.history.size  # the last 400 stored candles
    last = history[-1]
    candidate = Candidate(
        symbol="BTC/USDT",
        timeframe="5m",
        timestamp=last.timestamp,
        side=Side.BUY,
        price=last.close,
        stop_loss=last.close * 0.99,
        take_profit=last.close * 1.02,
        confidence=0.7,
        expected_move=0.01,
        strategy="default",
        regime=Regime.TREND_UP,
    )
    stage = runtime.bot.p.pipeline.advisor
    assert stage is not None
    context = stage._context_source(candidate)  # what the advisor is told for this candidate
    assert context.candles is not None
    assert context.candles.change_24h is not None and context.candles.change_1h is not None
    # the very summary a backtest holding the same candles computes: equal replay keys
    assert context.candles == CandleSummary.from_candles(history, TF)
