"""LiveFeed (the feed of `kmg run`) with a real adapter against the fake Binance klines socket:
every closed candle reaches the handler once, in order, with its final values."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kmg_autotrader.autopilot.feeds import ClosedCandle, LiveFeed
from kmg_autotrader.domain import Candle
from kmg_autotrader.exchange import ExchangeAdapter, RetryPolicy
from kmg_autotrader.storage.candle_store import CandleStore
from tests.fakes.fake_exchange import FakeExchange, random_walk_candles

MIN = 60_000
T0 = 1_700_000_040_000 // MIN * MIN
STREAM = "btcusdt@kline_1m"


@pytest.fixture
async def fake() -> AsyncIterator[FakeExchange]:
    server = await FakeExchange(now_ms=T0 + 10 * MIN + 5_000).start()
    server.set_klines("BTCUSDT", "1m", random_walk_candles(T0, 60, MIN, seed=11))
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def adapter(fake: FakeExchange) -> AsyncIterator[ExchangeAdapter]:
    client = ExchangeAdapter(
        "binance",
        config=fake.binance_config(),
        retry=RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02),
    )
    await client.load_markets()
    try:
        yield client
    finally:
        await client.close()


async def _ticking_until(fake: FakeExchange, cond: Callable[[], bool], timeout: float = 5) -> None:
    """Wait for ``cond`` while the open candle keeps ticking (as Binance pushes it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        if any(STREAM in streams for _, streams in fake.ws_clients):
            await fake.push_kline("BTCUSDT", "1m", (fake.now_ms or 0) // MIN * MIN, final=False)
        await asyncio.sleep(0.01)


async def test_closed_candles_reach_the_handler_once_each_in_order(
    fake: FakeExchange, adapter: ExchangeAdapter, tmp_path: Path
) -> None:
    seen: list[ClosedCandle] = []
    prices: list[tuple[str, float]] = []

    async def on_candle(event: ClosedCandle) -> None:
        seen.append(event)

    async def on_price(symbol: str, price: float, timestamp: int) -> None:
        prices.append((symbol, price))

    store = CandleStore(tmp_path)
    feed = LiveFeed(
        adapter, ["BTC/USDT"], "1m", start_after={"BTC/USDT": T0 + 4 * MIN}, store=store
    )
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(on_candle, on_price, stop))
    try:
        await _ticking_until(fake, lambda: any(STREAM in s for _, s in fake.ws_clients))
        for _ in range(12):  # 20 s steps: a candle closes every third step
            await fake.advance("BTCUSDT", "1m", (fake.now_ms or 0) + 20_000)
            await asyncio.sleep(0.02)
        last_closed = (fake.now_ms or 0) // MIN * MIN - MIN
        # ccxt.pro hands a message over when the next arrives: keep the open candle ticking
        await _ticking_until(fake, lambda: bool(seen) and seen[-1].candle.timestamp == last_closed)
        await fake.push_ticker("BTCUSDT")
        await _ticking_until(fake, lambda: bool(prices))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    truth = fake.klines[("BTCUSDT", "1m")]
    expected = [
        Candle(int(r[0]), r[1], r[2], r[3], r[4], r[5])
        for r in truth.to_numpy()
        if T0 + 4 * MIN < r[0] <= last_closed
    ]
    assert len(expected) >= 8
    assert [e.candle for e in seen] == expected  # backfill + socket: each once, in order
    assert all(e.symbol == "BTC/USDT" and not e.gap_before for e in seen)
    assert [e.closed_at for e in seen] == [c.timestamp + MIN for c in expected]
    stored = store.read("binance", "BTC/USDT", "1m")
    assert list(stored["timestamp"]) == [c.timestamp for c in expected]
    assert prices[0][0] == "BTC/USDT" and prices[0][1] > 0
