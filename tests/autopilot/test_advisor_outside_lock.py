"""Stops never wait for the LLM (issue 18, item 1): the advisor reviews a candidate outside the
bot's lock, so while an LLM server hangs, price ticks still check the mental stops within
milliseconds, the stop-loss exit goes out at once, and a stop cancels the review in flight.

Real parts throughout: the bot wired by ``build_runtime`` (PAPER, paper exchange with its file
ledger, SQLite), the real ``openai`` SDK against a fake OpenAI-compatible server on 127.0.0.1
whose first answer is an error (the advisor abstains: in advisory mode the first candidate
trades) and which then hangs for 60 s on every request. Two symbols replay the same packaged
BTC/USDT candles, so both get an entry candidate on the same candle: the first is bought, the
second's review hangs.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmg_autotrader.autopilot.bot import Bot
from kmg_autotrader.autopilot.feeds import ClosedCandle, ReplayFeed
from kmg_autotrader.autopilot.wiring import BotRuntime, build_runtime, sample_markets
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Candle, Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.paper import FileLedger, PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.risk.params import RiskParams, RiskParamsStore
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.e2e.harness import TRADE_SOON, TRADE_SOON_RISK
from tests.fakes.fake_llm_server import FakeLlmServer, error, slow

HELD, REVIEWED = "BTC/USDT", "ETH/USDT"  # the same candles: candidates on the same candle
WARMUP, START, END = 1_000, 4_691, 4_760  # TRADE_SOON enters on row ~4,711
STEP_MS = 300_000
HANG_S = 60.0
TICKS = 200


def _signal_params() -> SignalParams:
    return SignalParams.from_env({k: v for k, v in TRADE_SOON.items() if k.startswith("SIGNAL_")})


async def _wired(tmp_path: Path, llm: FakeLlmServer) -> tuple[BotRuntime, ReplayFeed, Any]:
    frame = load_sample_set("btc-usdt")["BTC/USDT"]
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        symbols=[HELD, REVIEWED],
        timeframe="5m",
        trading_mode=Mode.PAPER,
        strategy="default",
        signal_params=_signal_params(),
        openai_base_url=llm.base_url,
        openai_api_key="sk-test-not-a-real-key-000",
        advisor_mode="advisory",
        llm_timeout_seconds=HANG_S * 2,
        gpt_call_limit_per_hour=100,
        advisor_symbol_cooldown_minutes=0,
    )
    settings.data_dir.mkdir(parents=True)
    database = open_database(f"sqlite:///{(settings.data_dir / 'kmg.sqlite').resolve()}")
    repos = Repositories(database)
    RiskParamsStore(repos.risk_params, RiskParams(), mode=Mode.PAPER).update(
        dict(TRADE_SOON_RISK), source="test"
    )
    warm = frame.iloc[START - WARMUP : START]
    replay = frame.iloc[START:END].reset_index(drop=True)
    clock = SimulatedClock(int(replay["timestamp"].iloc[0]))
    markets = sample_markets([HELD, REVIEWED], settings.exchange)
    paper = PaperExchange(
        PaperEngine(
            markets,
            settings=PaperSettings(exchange_id=settings.exchange),
            clock=clock,
            ledger=FileLedger(settings.data_dir / "paper.json", repos.balances),
            balances={"USDT": Decimal(10_000)},
        )
    )
    runtime = build_runtime(
        settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=paper,
        markets=markets,
        paper=paper,
        quote="USDT",
    )
    for symbol in (HELD, REVIEWED):
        runtime.bot.p.engine.warm_up(symbol, warm)
        runtime.bot.last_prices[symbol] = Decimal(str(warm["close"].iloc[-1]))
    feed = ReplayFeed({HELD: replay, REVIEWED: replay}, STEP_MS, clock=clock, speed=0)
    return runtime, feed, database


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _tick(bot: Bot, price: Decimal) -> float:
    """One price tick of the held symbol; the seconds until its stops were checked."""
    now = bot.p.clock.now_ms()
    started = time.perf_counter()
    try:
        await asyncio.wait_for(bot.on_price(HELD, float(price), now), timeout=5)
    except TimeoutError:
        raise AssertionError(
            "a price tick waited over 5 s: the stop check queued behind the advisor's review"
        ) from None
    return time.perf_counter() - started


@pytest.mark.timeout(120)
def test_stop_checks_and_the_stop_loss_exit_do_not_wait_for_a_hanging_llm(
    tmp_path: Path,
) -> None:
    async def scenario(llm: FakeLlmServer) -> None:
        runtime, feed, database = await _wired(tmp_path, llm)
        bot = runtime.bot
        stop = asyncio.Event()
        await runtime.start()
        run = asyncio.create_task(bot.run(feed, stop))
        try:
            # the held symbol's review failed at once (bought); the other one's now hangs
            await _until(lambda: len(llm.requests) >= 2, 30, "the second advisor request")
            assert not run.done()
            store = bot.p.manager.store
            # the held symbol's market entry fills on the first tick
            last = bot.last_prices[HELD]
            first = await _tick(bot, last)
            opened = [p for p in store.open_positions(HELD) if p.amount > 0]
            assert len(opened) == 1, "the entry did not fill on the tick"
            position = opened[0]
            assert position.stop_loss is not None
            assert store.open_positions(REVIEWED) == []
            stop_loss = Decimal(str(position.stop_loss))
            above = max(last, stop_loss * Decimal("1.001"))
            latencies = [first]
            for k in range(TICKS):  # prices above the stop: each tick checks it
                latencies.append(await _tick(bot, above + Decimal(k % 5)))
            latencies.append(await _tick(bot, stop_loss * Decimal("0.995")))  # through it
            orders = store.orders_for_position(position.id)
            assert [o.purpose for o in orders] == ["entry", "stop_loss"]  # the exit went out
            await _tick(bot, stop_loss * Decimal("0.995"))  # the paper market order fills
            closed = store.get_position(position.id)
            assert closed is not None and closed.closed_at is not None
            assert closed.exit_reason == "stop_loss"
            assert len(llm.requests) == 2 and not run.done()  # still hanging all along
            ms = np.array(latencies) * 1000
            p99 = float(np.quantile(ms, 0.99))
            print(
                f"stop-check latency while the LLM hangs: p50 {np.median(ms):.2f} ms, "
                f"p99 {p99:.2f} ms, max {ms.max():.2f} ms; stop-loss exit {ms[-1]:.2f} ms"
            )
            assert p99 < 100, f"stop-check latency p99 {p99:.1f} ms"
            assert ms[-1] < 1000, f"the stop-loss exit took {ms[-1]:.0f} ms"
            # a stop cancels the review in flight: the run ends at once, not after the LLM
            stopped = time.perf_counter()
            stop.set()
            await asyncio.wait_for(run, timeout=5)
            assert time.perf_counter() - stopped < 5
            assert bot.p.manager.store.open_positions(REVIEWED) == []
        finally:
            stop.set()
            if not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
            await runtime.stop()
            database.dispose()

    with FakeLlmServer(default=slow(HANG_S)) as llm:
        llm.enqueue(error(400))  # the first review abstains at once: advisory, it trades
        asyncio.run(scenario(llm))


@pytest.mark.timeout(60)
def test_a_second_candidate_of_a_symbol_under_review_starts_no_second_review(
    tmp_path: Path,
) -> None:
    async def scenario(llm: FakeLlmServer) -> None:
        runtime, _feed, database = await _wired(tmp_path, llm)
        bot = runtime.bot
        await runtime.start()
        frame = load_sample_set("btc-usdt")["BTC/USDT"].iloc[START:END].reset_index(drop=True)
        candles = [
            Candle(int(r.timestamp), r.open, r.high, r.low, r.close, r.volume)
            for r in frame.itertuples()
        ]
        reviews: list[asyncio.Task[Any]] = []
        try:
            # the replayed candles, one symbol only, each handled in its own task (as two
            # live streams of one symbol would): the first candidate's review hangs
            for candle in candles:
                bot.p.clock.set(candle.timestamp + STEP_MS)  # type: ignore[attr-defined]
                event = ClosedCandle(REVIEWED, candle, candle.timestamp + STEP_MS)
                task = asyncio.create_task(bot.on_candle(event))
                asked = len(llm.requests)
                deadline = time.monotonic() + 5
                while not task.done() and len(llm.requests) == asked:
                    assert time.monotonic() < deadline, (
                        f"candle {candle.timestamp} waited 5 s behind the advisor's review"
                    )
                    await asyncio.sleep(0.01)
                if not task.done():
                    reviews.append(task)  # its candidate's review hangs
            assert len(reviews) == 1
            assert bot.summary.review_skips >= 1  # a later candidate came, and was skipped
            assert len(llm.requests) == 1
        finally:
            for task in reviews:
                task.cancel()
            await asyncio.gather(*reviews, return_exceptions=True)
            await runtime.stop()
            database.dispose()

    with FakeLlmServer(default=slow(HANG_S)) as llm:
        asyncio.run(scenario(llm))
