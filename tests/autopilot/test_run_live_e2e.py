"""`kmg run --live` in process: run_live against the fake Binance (real ccxt class, signed
REST, klines socket) with nothing but the keys and EXCHANGE_API_URL pointing at it.

Real BTC/USDT candles (packaged sample) are re-timed so the candle open now is the one before
a known entry; the fake serves the earlier ones as history (the warm-up download) and then
closes one candle per step on its socket. The exchange's time runs ahead of the wall clock (a
step is a 5-minute candle), so the bot is given the exchange's clock, as a venue replaying at
speed would need. The run must download, stream, decide, send the order, fill, and value the
account at the exchange's balances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from kmg_autotrader.autopilot.runner import run_live
from kmg_autotrader.autopilot.wiring import BotRuntime
from kmg_autotrader.config import Settings, load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.fakes.fake_exchange_orders import FakeOrderExchange

TF = 300_000
WARMUP = 600
LAST_HISTORY = 3_925  # sample row of the last closed candle at start; PAPER enters on 3,930
STEPS = 10
START_USDT = Decimal(10_000)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOrderExchange]:
    frame = load_sample_set("btc-usdt")["BTC/USDT"]
    rows = frame.iloc[LAST_HISTORY - WARMUP - 5 : LAST_HISTORY + STEPS + 2].reset_index(drop=True)
    open_now = int(time.time() * 1000) // TF * TF
    rows["timestamp"] = open_now + (rows.index - (WARMUP + 5)) * TF
    # the exchange's time starts at the close of row LAST_HISTORY (the candle open on the wall)
    server = await FakeOrderExchange(now_ms=open_now + TF, usdt=START_USDT).start()
    server.engine.clock = SimulatedClock(open_now + TF)  # the exchange's time, for its fills
    server.set_klines("BTCUSDT", "5m", rows)
    server.trade(Decimal(str(rows["close"].iloc[WARMUP + 5])))
    try:
        yield server
    finally:
        await server.stop()


def _settings(fake: FakeOrderExchange, data_dir: Path) -> Settings:
    return load_settings(
        None,
        data_dir=data_dir,
        trading_mode=Mode.LIVE,
        binance_api_key="venue-key-0123",
        binance_secret_key="venue-secret-0123",
        exchange_api_url=fake.base,
        symbols=["BTC/USDT"],
        timeframe="5m",
        advisor_mode="off",
    )


async def _until(cond: Callable[[], bool], fake: FakeOrderExchange, timeout: float = 10) -> None:
    """Wait for ``cond`` while the open candle keeps ticking (as Binance pushes it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        if fake.ws_clients:
            open_ts = (fake.now_ms or 0) // TF * TF
            await fake.push_kline("BTCUSDT", "5m", open_ts, final=False)
        await asyncio.sleep(0.01)


async def test_run_live_downloads_streams_decides_and_trades_at_the_exchanges_equity(
    fake: FakeOrderExchange, tmp_path: Path
) -> None:
    settings = _settings(fake, tmp_path / "data")
    seen: list[BotRuntime] = []

    async def capture(
        _settings: Settings, _repos: Repositories, runtime: BotRuntime
    ) -> Callable[[], Awaitable[None]]:
        seen.append(runtime)  # the web hook hands over the runtime: watch it, serve nothing

        async def stop_nothing() -> None:
            return None

        return stop_nothing

    errors: list[str] = []
    sink = logger.add(lambda message: errors.append(str(message)), level="ERROR")
    clock = fake.engine.clock
    assert isinstance(clock, SimulatedClock)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_live(
            settings, live_flag=True, web=capture, stop=stop, warmup_candles=WARMUP, clock=clock
        )
    )
    try:
        await _until(lambda: bool(seen) or task.done(), fake)
        assert not task.done(), task.exception() if task.done() else None
        bot = seen[0].bot
        assert bot.p.mode is Mode.LIVE
        subscribed = "btcusdt@kline_5m"
        await _until(lambda: any(subscribed in s for _, s in fake.ws_clients), fake)
        for _ in range(STEPS):
            now = (fake.now_ms or 0) + TF
            clock.set(now)
            await fake.advance("BTCUSDT", "5m", now)
            closed = bot.summary.candles + 1
            await _until(lambda c=closed: bot.summary.candles >= c, fake)  # type: ignore[misc]
            # orders decided on that close fill at the new candle's open, as in a replay
            fake.trade(Decimal(str(fake.last_price("BTCUSDT"))))
    finally:
        stop.set()
        try:
            summary = await asyncio.wait_for(task, 20)
        finally:
            logger.remove(sink)

    assert errors == []  # no candle, job, stream or order step failed on the way

    assert summary.candles == STEPS
    assert summary.entries >= 1 and fake.creates >= 1
    assert "INVALID_CANDIDATE" not in summary.rejections
    warm_requests = [p for p in fake.requests if p.startswith("/api/v3/klines")]
    assert warm_requests and fake.ws_connects >= 1
    database = open_database(settings.database_url)
    try:
        repos = Repositories(database)
        truth: dict[str, Any] = fake.engine.balance()["total"]
        table = {b.currency: b.total for b in repos.balances.all(Mode.LIVE) if b.total != 0}
        assert table == {c: Decimal(str(v)) for c, v in truth.items() if v}
        last = repos.equity.latest(Mode.LIVE)
        assert last is not None and last.equity == summary.last_equity
        truth_rows = fake.klines[("BTCUSDT", "5m")]
        last_closed = truth_rows[truth_rows["timestamp"] == (fake.now_ms or 0) - TF]
        price = Decimal(str(last_closed["close"].iloc[0]))  # marked at the last close
        btc = Decimal(str(truth.get("BTC", 0)))
        assert last.equity == Decimal(str(truth["USDT"])) + btc * price
        assert repos.orders.recent(Mode.LIVE, limit=10)
        assert not repos.orders.recent(Mode.PAPER, limit=10)
    finally:
        database.dispose()
